"""Kubernetes protobuf request bodies, decoded into the JSON form the rest of the simulator
speaks.

Why: client-go's typed clients (`kubernetes.NewForConfig`) send built-in kinds as
`application/vnd.kubernetes.protobuf`. Helm's default release storage (the Secret driver)
is such a client: it POSTs and PUTs `helm.sh/release.v1` Secrets, and DELETEs them with a
protobuf `DeleteOptions` body. Those clients accept JSON answers (their Accept header lists
`application/json` after protobuf), so only *decoding* is needed.

Wire format (k8s.io/apimachinery/pkg/runtime/serializer/protobuf): the 4 magic bytes
`k8s\\x00`, then a `runtime.Unknown` message {1: typeMeta {1: apiVersion, 2: kind}, 2: raw,
3: contentEncoding, 4: contentType}; `raw` is the object's own message, as declared in the
`generated.proto` files of k8s.io/api and k8s.io/apimachinery (field numbers below).

Only the kinds a client has been seen to send are described (Secret, ConfigMap,
DeleteOptions and the ObjectMeta they carry). A field this table does not know is not
skipped silently: it is a 415 naming the kind and field number, so a gap shows up as a
clear failure instead of a quietly lost field.
"""
import base64
import json
import time

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    """A body the simulator cannot decode (answered 415 or 400)."""


# --- wire level -----------------------------------------------------------------------

def _varint(buf, i):
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def fields(buf):
    """Yield (field number, wire type, value): ints for varints, bytes for the rest."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ProtobufError("truncated length-delimited field")
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        yield num, wt, v


def _signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


# --- message descriptions -------------------------------------------------------------
# field number -> F(JSON name, type, repeated, pointer). Types: "string", "bytes" (base64 in
# JSON), "int" (int32/int64), "bool", "time" (metav1.Time -> RFC 3339), "raw-json"
# (FieldsV1: {1: raw JSON bytes}), ("map", key type, value type), or a nested description.
# `pointer`: a Go pointer field, sent only when set, so its zero value means something
# (gracePeriodSeconds: 0); the other scalars are always sent and their zero value means
# "unset" (JSON's omitempty), so a decoded zero is dropped.

TIME = "time"


class F:
    __slots__ = ("name", "type", "repeated", "pointer")

    def __init__(self, name, typ, repeated=False, pointer=False):
        self.name, self.type, self.repeated, self.pointer = name, typ, repeated, pointer


OWNER_REFERENCE = {"__name__": "OwnerReference",
                   1: F("kind", "string"), 3: F("name", "string"), 4: F("uid", "string"),
                   5: F("apiVersion", "string"), 6: F("controller", "bool", pointer=True),
                   7: F("blockOwnerDeletion", "bool", pointer=True)}

MANAGED_FIELDS_ENTRY = {"__name__": "ManagedFieldsEntry",
                        1: F("manager", "string"), 2: F("operation", "string"),
                        3: F("apiVersion", "string"), 4: F("time", TIME, pointer=True),
                        6: F("fieldsType", "string"),
                        7: F("fieldsV1", "raw-json", pointer=True),
                        8: F("subresource", "string")}

OBJECT_META = {"__name__": "ObjectMeta",
               1: F("name", "string"), 2: F("generateName", "string"),
               3: F("namespace", "string"), 4: F("selfLink", "string"),
               5: F("uid", "string"), 6: F("resourceVersion", "string"),
               7: F("generation", "int"), 8: F("creationTimestamp", TIME),
               9: F("deletionTimestamp", TIME, pointer=True),
               10: F("deletionGracePeriodSeconds", "int", pointer=True),
               11: F("labels", ("map", "string", "string")),
               12: F("annotations", ("map", "string", "string")),
               13: F("ownerReferences", OWNER_REFERENCE, repeated=True),
               14: F("finalizers", "string", repeated=True),
               17: F("managedFields", MANAGED_FIELDS_ENTRY, repeated=True)}

SECRET = {"__name__": "Secret",
          1: F("metadata", OBJECT_META), 2: F("data", ("map", "string", "bytes")),
          3: F("type", "string"), 4: F("stringData", ("map", "string", "string")),
          5: F("immutable", "bool", pointer=True)}

CONFIG_MAP = {"__name__": "ConfigMap",
              1: F("metadata", OBJECT_META), 2: F("data", ("map", "string", "string")),
              3: F("binaryData", ("map", "string", "bytes")),
              4: F("immutable", "bool", pointer=True)}

PRECONDITIONS = {"__name__": "Preconditions",
                 1: F("uid", "string", pointer=True),
                 2: F("resourceVersion", "string", pointer=True)}

DELETE_OPTIONS = {"__name__": "DeleteOptions",
                  1: F("gracePeriodSeconds", "int", pointer=True),
                  2: F("preconditions", PRECONDITIONS, pointer=True),
                  3: F("orphanDependents", "bool", pointer=True),
                  4: F("propagationPolicy", "string", pointer=True),
                  5: F("dryRun", "string", repeated=True),
                  6: F("ignoreStoreReadErrorWithClusterBreakingPotential", "bool",
                       pointer=True)}

# (apiVersion, kind) -> description. DeleteOptions are recognised by kind alone: client-go
# sends them under the group version of the resource being deleted.
MESSAGES = {("v1", "Secret"): SECRET, ("v1", "ConfigMap"): CONFIG_MAP}


def _scalar(typ, wt, v, where):
    if typ == "string":
        if wt != 2:
            raise ProtobufError(f"{where}: expected a string")
        return v.decode("utf-8")
    if typ == "bytes":
        if wt != 2:
            raise ProtobufError(f"{where}: expected bytes")
        return base64.b64encode(v).decode()
    if typ == "int":
        if wt != 0:
            raise ProtobufError(f"{where}: expected a varint")
        return _signed64(v)
    if typ == "bool":
        if wt != 0:
            raise ProtobufError(f"{where}: expected a varint")
        return bool(v)
    if typ == TIME:
        seconds = nanos = 0
        for n, w, x in fields(v):
            if n == 1 and w == 0:
                seconds = _signed64(x)
            elif n == 2 and w == 0:
                nanos = x
        if not seconds and not nanos:
            return None  # the zero time: `null` in JSON
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    if typ == "raw-json":
        for n, w, x in fields(v):
            if n == 1 and w == 2:
                return json.loads(x or b"{}")
        return {}
    raise ProtobufError(f"{where}: unknown type {typ!r}")


def decode_message(buf, desc):
    out, set_fields = {}, set()
    name = desc.get("__name__", "message")
    for num, wt, v in fields(buf):
        f = desc.get(num)
        if f is None:
            raise ProtobufError(f"k8s-sim cannot decode field {num} of a protobuf {name}")
        where = f"{name}.{f.name}"
        typ = f.type
        if isinstance(typ, tuple) and typ[0] == "map":
            k = val = None
            for n, w, x in fields(v):
                if n == 1:
                    k = _scalar(typ[1], w, x, where)
                elif n == 2:
                    val = _scalar(typ[2], w, x, where)
            out.setdefault(f.name, {})[k if k is not None else ""] = \
                val if val is not None else ("" if typ[2] in ("string", "bytes") else None)
            continue
        if isinstance(typ, dict):
            if wt != 2:
                raise ProtobufError(f"{where}: expected a message")
            value = decode_message(v, typ)
        else:
            value = _scalar(typ, wt, v, where)
        if f.repeated:
            out.setdefault(f.name, []).append(value)
        else:
            out[f.name] = value
        set_fields.add(num)
    for num in set_fields:
        f = desc[num]
        if not f.pointer and not f.repeated and out.get(f.name) in ("", 0, False, None, {}):
            del out[f.name]
    return out


def unwrap(body):
    """(apiVersion, kind, raw message bytes) from a `k8s\\0` envelope."""
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body without the k8s magic prefix")
    api_version = kind = ""
    raw = b""
    content_encoding = ""
    for num, wt, v in fields(body[len(MAGIC):]):
        if num == 1 and wt == 2:
            for n, w, x in fields(v):
                if n == 1 and w == 2:
                    api_version = x.decode()
                elif n == 2 and w == 2:
                    kind = x.decode()
        elif num == 2 and wt == 2:
            raw = v
        elif num == 3 and wt == 2:
            content_encoding = v.decode()
    if content_encoding:
        raise ProtobufError(f"unsupported protobuf contentEncoding {content_encoding!r}")
    return api_version, kind, raw


def decode(body):
    """The JSON-equivalent dict of a protobuf request body (apiVersion and kind included
    for objects; DeleteOptions come back as options)."""
    api_version, kind, raw = unwrap(body)
    if kind == "DeleteOptions":
        out = decode_message(raw, DELETE_OPTIONS)
    else:
        desc = MESSAGES.get((api_version, kind))
        if desc is None:
            raise ProtobufError(f"k8s-sim cannot decode a protobuf {api_version} {kind} "
                                f"(send JSON)")
        out = decode_message(raw, desc)
    out = {"apiVersion": api_version, "kind": kind, **out}
    return out
