"""The object store: every object of the simulated cluster, one global resourceVersion
counter, and the history of changes that watches and controllers read.

Why one lock and one condition: the real API server gives a total order of writes (etcd's
revision), and clients rely on it (list at resourceVersion R, then watch from R without
missing anything). A single re-entrant lock makes every write atomic and ordered; the
condition wakes every watch stream and the controller loop when a write lands. Readers
of the history never see a half-done write.

Conventions: a stored object is never mutated in place. Writers build a new dict (deep
copy, change, `commit`), so the objects referenced from the history stay valid snapshots and
can be serialised without the lock.
"""
import bisect
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    rv: int
    type: str                 # ADDED, MODIFIED, DELETED
    group: str
    plural: str
    namespace: str
    name: str
    obj: dict                 # the new state (the last state for DELETED)
    old: dict                 # the previous state, None for ADDED


class Store:
    def __init__(self, history_limit=200_000, first_rv=1000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._objects = {}    # (group, plural) -> {(namespace, name): obj}
        self._rv = first_rv
        self._history = []    # Events, rv increasing
        self._history_rvs = []
        self.history_limit = history_limit
        self.compacted_rv = 0  # events with rv <= this are gone from the history
        self.stopping = False

    # --- reading ------------------------------------------------------------------------

    @property
    def rv(self):
        with self.lock:
            return self._rv

    def get(self, group, plural, namespace, name):
        with self.lock:
            return self._objects.get((group, plural), {}).get((namespace or "", name))

    def list(self, group, plural, namespace=None):
        """Objects of a resource (all namespaces when namespace is None), sorted by
        namespace then name, as the API server sorts them."""
        with self.lock:
            objs = self._objects.get((group, plural), {})
            keys = sorted(k for k in objs if namespace is None or k[0] == namespace)
            return [objs[k] for k in keys]

    def kinds(self):
        with self.lock:
            return [k for k, v in self._objects.items() if v]

    def events_since(self, rv):
        """Events with a resourceVersion above `rv`. Raises LookupError when some of them
        were compacted away (the watch answer is then 410 Gone)."""
        with self.lock:
            if rv < self.compacted_rv:
                raise LookupError(rv)
            i = bisect.bisect_right(self._history_rvs, rv)
            return self._history[i:]

    # --- writing ------------------------------------------------------------------------

    def next_rv(self):
        with self.lock:
            self._rv += 1
            return self._rv

    def commit(self, group, plural, namespace, name, obj, etype, old=None, rv=None):
        """Store `obj` (or remove the object when etype is DELETED; `obj` is then its last
        state) under a new resourceVersion, record the event, wake the waiters."""
        with self.lock:
            rv = rv if rv is not None else self.next_rv()
            obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
            bucket = self._objects.setdefault((group, plural), {})
            key = (namespace or "", name)
            if etype == "DELETED":
                bucket.pop(key, None)
            else:
                bucket[key] = obj
            ev = Event(rv, etype, group, plural, namespace or "", name, obj, old)
            self._history.append(ev)
            self._history_rvs.append(rv)
            if len(self._history) > self.history_limit:
                self.compact(len(self._history) // 2)
            self.cond.notify_all()
            return ev

    def compact(self, keep=0):
        """Forget all but the last `keep` events: watches from before them get 410 Gone
        (what etcd compaction does to a lagging client)."""
        with self.lock:
            drop = len(self._history) - keep
            if drop <= 0:
                return
            self.compacted_rv = self._history_rvs[drop - 1]
            del self._history[:drop]
            del self._history_rvs[:drop]

    def wake(self):
        with self.lock:
            self.cond.notify_all()
