"""Watch streams, with the semantics clients depend on.

- Start point: no `resourceVersion` or "0" -> synthetic ADDED events for what exists, then
  changes; a resourceVersion R -> every change after R (a list at R followed by a watch from
  R misses nothing); R older than the compacted history -> an ERROR event with a 410
  `Expired` Status, as etcd compaction gives a lagging client.
- Watch-list (`sendInitialEvents=true`, `resourceVersionMatch=NotOlderThan`, Helm 4 and
  client-go's streaming lists): ADDED for what exists, then a BOOKMARK annotated
  `k8s.io/initial-events-end: "true"`.
- Selectors are applied to both the old and the new state of a change, so an object that
  stops matching arrives as DELETED and one that starts matching as ADDED, like the real
  watch cache does.
- `allowWatchBookmarks=true` -> periodic BOOKMARKs carrying only the resourceVersion.
- `timeoutSeconds` ends the stream cleanly; so does stopping the server, and a client that
  hung up is noticed within half a second even when nothing happens.
"""
import copy
import time

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class WatchError(Exception):
    """Raised before the stream starts (answered as a plain error)."""


def _bookmark(rt, rv, initial_end=False):
    meta = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                           "metadata": meta}}


def _expired(rv, current):
    return {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {rv} ({current})", "reason": "Expired",
        "code": 410}}


def _parse_rv(text):
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise WatchError(f"invalid resource version {text!r}")


class Watch:
    """One watch request. `events()` yields event dicts until the stream should end."""

    def __init__(self, sim, rt, namespace, lsel, fsel, params, alive=lambda: True):
        self.sim, self.store = sim, sim.store
        self.rt, self.ns, self.lsel, self.fsel = rt, namespace, lsel, fsel
        self.alive = alive
        timeout = params.get("timeoutSeconds")
        try:
            self.timeout = float(timeout) if timeout not in (None, "") else \
                sim.default_watch_timeout
        except ValueError:
            raise WatchError(f"invalid timeoutSeconds {timeout!r}")
        self.rv = _parse_rv(params.get("resourceVersion"))
        self.send_initial = params.get("sendInitialEvents") == "true"
        self.bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        if self.send_initial:
            if params.get("resourceVersionMatch") != "NotOlderThan":
                raise WatchError("sendInitialEvents requires setting resourceVersionMatch "
                                 "to NotOlderThan")
            if not self.bookmarks:
                raise WatchError("sendInitialEvents requires allowWatchBookmarks=true")

    def _match(self, obj):
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.ns and meta.get("namespace", "") != self.ns:
            return False
        return self.lsel.matches(meta.get("labels")) and self.fsel.matches(obj)

    def _classify(self, ev):
        if (ev.group, ev.plural) != (self.rt.group, self.rt.plural):
            return None
        if ev.type == "DELETED":
            return "DELETED" if self._match(ev.obj) else None
        new = self._match(ev.obj)
        old = self._match(ev.old) if ev.type == "MODIFIED" else False
        if new and old:
            return "MODIFIED"
        if new:
            return "ADDED"
        if old:
            return "DELETED"
        return None

    def _out(self, etype, obj):
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = self.rt.api_version, self.rt.kind
        return {"type": etype, "object": obj}

    def events(self):
        store = self.store
        deadline = time.monotonic() + self.timeout
        expired = None
        with store.lock:
            current = store.rv
            if self.send_initial or self.rv in (None, 0):
                initial = [o for o in store.list(self.rt.group, self.rt.plural,
                                                 self.ns if self.rt.namespaced else None)
                           if self._match(o)]
                cursor = current
            else:
                initial = []
                cursor = self.rv
                if cursor < store.compacted_rv:
                    expired = _expired(cursor, current)
        if expired:
            yield expired
            return
        for o in initial:
            yield self._out("ADDED", o)
        if self.send_initial:
            yield _bookmark(self.rt, cursor, initial_end=True)
        interval = self.sim.bookmark_interval
        next_bookmark = time.monotonic() + interval
        while True:
            batch, end = [], None
            with store.lock:
                while True:
                    if store.stopping:
                        end = "stop"
                        break
                    try:
                        batch = store.events_since(cursor)
                    except LookupError:
                        end = _expired(cursor, store.rv)
                        break
                    if batch:
                        break
                    now = time.monotonic()
                    if now >= deadline:
                        end = "timeout"
                        break
                    if self.bookmarks and now >= next_bookmark:
                        break
                    wait = min(deadline - now, 0.5)
                    if self.bookmarks:
                        wait = min(wait, max(0.0, next_bookmark - now))
                    store.cond.wait(wait)
                    if not self.alive():
                        end = "gone"
                        break
                if batch:
                    cursor = batch[-1].rv
            if isinstance(end, dict):
                yield end
            if end:
                return
            for ev in batch:
                etype = self._classify(ev)
                if etype:
                    yield self._out(etype, ev.obj)
            if self.bookmarks and time.monotonic() >= next_bookmark:
                yield _bookmark(self.rt, cursor)
                next_bookmark = time.monotonic() + interval
            if time.monotonic() >= deadline:
                return
