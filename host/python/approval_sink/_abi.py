"""Calls into the component through wasmtime-py's C API, with the value
conversions planned once per function instead of on every call.

Why this exists: wasmtime-py 50's ``Func.__call__`` asks the C API for the
function's type on every call, walks every record and variant type again
for every value, and lowers and lifts a ``list<u8>`` one element at a time
through a ctypes pointer per byte. For this registry (byte buffers in and
out of nearly every call) that was over 80 % of a round trip and capped
ingest at ~25k frames/s (BENCHMARKS.md, "Python"). Here:

* the parameter and result types of a function are read once (:class:`Call`);
* a ``list<u8>`` is lowered in bulk: the C API's value array is a flat
  array of ``wasmtime_component_val_t`` (kind byte, then the payload
  union), so the kinds and the bytes are written with two strided slice
  assignments into one buffer and copied in with one ``memmove``; lifted
  the same way with one ``string_at`` and one strided slice;
* results are read without freeing as they go, then freed once with
  ``wasmtime_component_val_delete`` (which frees recursively);
* the ``clock.now`` import, which the guest calls on every ingest, is a
  ctypes callback that writes the ``u64`` result directly
  (:func:`add_clock`), where wasmtime-py's generic trampoline rebuilt the
  function's type and converted through it on every call (a quarter of a
  one-event ingest).

Sizes and offsets come from wasmtime-py's own ctypes declarations, never
from constants; the package pins wasmtime-py's exact version, and
:func:`self_check` (run before the first instance) round-trips bytes through
this path and refuses to go on, with a clear error, if wasmtime-py's value
layout is not the one read here.

Values as this module returns them: a record is a ``dict`` (WIT field names),
a variant is a ``Variant(tag, payload)``, an enum its case name, an option
``None`` or its value, a ``result`` its ok payload (``None`` when it has
none) or, when it is an error, an :class:`Err`.
"""

from __future__ import annotations

import ctypes
import itertools
from ctypes import CFUNCTYPE, byref, c_void_p, pointer
from typing import Any, Callable, Dict, List, Optional

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import Variant
from wasmtime.component._enter import enter_wasm
from wasmtime.component._types import (
    Bool,
    EnumType,
    ListType,
    OptionType,
    RecordType,
    ResultType,
    S32,
    S64,
    String,
    U8,
    U16,
    U32,
    U64,
    ValType,
    VariantType,
)

_VAL = ffi.wasmtime_component_val_t
_SIZE = ctypes.sizeof(_VAL)
_KIND_AT = _VAL.kind.offset
_PAYLOAD_AT = _VAL.of.offset
_U8 = ffi.WASMTIME_COMPONENT_U8.value
_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_U64 = ffi.WASMTIME_COMPONENT_U64.value


class Err:
    """The error case of a WIT ``result``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


Lower = Callable[[Any, "ctypes._Pointer[Any]"], None]
Lift = Callable[[Any], Any]


def _lower_bytes(data: bytes, ptr: "ctypes._Pointer[Any]") -> None:
    n = len(data)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, n)
    if n:
        flat = bytearray(n * _SIZE)
        flat[_KIND_AT::_SIZE] = bytes((_U8,)) * n
        flat[_PAYLOAD_AT::_SIZE] = data
        ctypes.memmove(raw.data, (ctypes.c_char * len(flat)).from_buffer(flat), len(flat))
    ptr.contents.kind = _LIST
    ptr.contents.of.list = raw


def _lift_bytes(c: Any) -> bytes:
    n = c.of.list.size
    if n == 0:
        return b""
    flat = ctypes.string_at(c.of.list.data, n * _SIZE)
    return flat[_PAYLOAD_AT::_SIZE]


def _name(vec: Any) -> str:
    return ctypes.string_at(vec.data, vec.size).decode("utf-8")


def plan_lower(ty: ValType, store: Any) -> Lower:
    """How to lower a value of ``ty`` (bulk for ``list<u8>``)."""
    if isinstance(ty, ListType) and isinstance(ty.element, U8):
        return _lower_bytes
    return lambda val, ptr: ty.convert_to_c(store, val, ptr)


def plan_lift(ty: ValType) -> Lift:
    """How to read a value of ``ty`` without freeing it."""
    if isinstance(ty, (U8, U16, U32, U64, S32, S64)):
        field = type(ty).__name__.lower()
        return lambda c: getattr(c.of, field)
    if isinstance(ty, Bool):
        return lambda c: bool(c.of.boolean)
    if isinstance(ty, String):
        return lambda c: _name(c.of.string)
    if isinstance(ty, EnumType):
        return lambda c: _name(c.of.enumeration)
    if isinstance(ty, ListType):
        if isinstance(ty.element, U8):
            return _lift_bytes
        element = plan_lift(ty.element)
        return lambda c: [element(c.of.list.data[i]) for i in range(c.of.list.size)]
    if isinstance(ty, RecordType):
        fields = [(name, plan_lift(field)) for name, field in ty.fields]

        def record(c: Any) -> dict:
            data = c.of.record.data
            return {name: lift(data[i].val) for i, (name, lift) in enumerate(fields)}

        return record
    if isinstance(ty, VariantType):
        cases = {name: (plan_lift(payload) if payload is not None else None) for name, payload in ty.cases}

        def variant(c: Any) -> Variant:
            tag = _name(c.of.variant.discriminant)
            lift = cases[tag]
            if lift is None or not c.of.variant.val:
                return Variant(tag)
            return Variant(tag, lift(c.of.variant.val.contents))

        return variant
    if isinstance(ty, OptionType):
        some = plan_lift(ty.payload)
        return lambda c: some(c.of.option.contents) if c.of.option else None
    if isinstance(ty, ResultType):
        ok = plan_lift(ty.ok) if ty.ok is not None else None
        err = plan_lift(ty.err) if ty.err is not None else None

        def result(c: Any) -> Any:
            val = c.of.result.val
            if c.of.result.is_ok:
                return ok(val.contents) if ok is not None and val else None
            return Err(err(val.contents) if err is not None and val else None)

        return result
    raise TypeError(f"no lift planned for {type(ty).__name__}")


class Call:
    """One exported function with its conversions planned once."""

    def __init__(self, func: Any, store: Any) -> None:
        self._func = func
        ty = func.type(store)
        self._lower: List[Lower] = [plan_lower(t, store) for _, t in ty.params]
        result = ty.result
        self._lift: Optional[Lift] = plan_lift(result) if result is not None else None

    def __call__(self, store: Any, *args: Any) -> Any:
        n = len(args)
        params = (_VAL * max(1, n))()
        lowered = 0
        result = _VAL()
        try:
            for i, (lower, arg) in enumerate(zip(self._lower, args)):
                lower(arg, pointer(params[i]))
                lowered += 1
            context = store._context()
            if self._lift is None:
                enter_wasm(lambda: ffi.wasmtime_component_func_call(byref(self._func._func), context, params, n, None, 0))
                return None
            enter_wasm(lambda: ffi.wasmtime_component_func_call(byref(self._func._func), context, params, n, byref(result), 1))
            try:
                return self._lift(result)
            finally:
                ffi.wasmtime_component_val_delete(byref(result))
        finally:
            for i in range(lowered):
                ffi.wasmtime_component_val_delete(byref(params[i]))

    def post_return(self, store: Any) -> None:
        self._func.post_return(store)


_CLOCKS: Dict[int, Callable[[], int]] = {}
_CLOCK_IDS = itertools.count(1)


@ffi.wasmtime_component_func_callback_t
def _clock_now(idx, _context, _ty, _args, _nargs, results, nresults):  # type: ignore[no-untyped-def]
    try:
        if nresults != 1:
            raise TypeError("clock.now returns one u64")
        now = _CLOCKS[idx or 0]()
        results[0].kind = _U64
        results[0].of.u64 = now
        return 0
    except Exception as e:  # noqa: BLE001 - becomes a trap, as in wasmtime-py
        return ctypes.cast(WasmtimeError(f"clock.now failed: {e}")._consume(), c_void_p).value


@CFUNCTYPE(None, c_void_p)
def _drop_clock(idx):  # type: ignore[no-untyped-def]
    _CLOCKS.pop(idx or 0, None)


def add_clock(instance: Any, now_ns: Callable[[], int]) -> None:
    """Defines ``now: func() -> u64`` in a linker instance (wasmtime-py's
    ``LinkerInstance``) as a direct callback to ``now_ns``."""
    idx = next(_CLOCK_IDS)
    _CLOCKS[idx] = now_ns
    name = b"now"
    err = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(name), len(name), _clock_now, idx, _drop_clock
    )
    if err:
        _CLOCKS.pop(idx, None)
        raise WasmtimeError._from_ptr(err)


def self_check() -> None:
    """Lowers and lifts bytes through the planned path and compares them
    with what went in; raises if wasmtime-py's layout is not what this
    module reads."""
    data = bytes(range(256)) * 3
    val = _VAL()
    _lower_bytes(data, pointer(val))
    try:
        if val.of.list.size != len(data) or any(val.of.list.data[i].of.u8 != data[i] for i in (0, 1, 255, 767)):
            raise RuntimeError("wasmtime-py's value layout is not the one approval_sink._abi reads")
        if any(val.of.list.data[i].kind != _U8 for i in (0, 767)) or _lift_bytes(val) != data:
            raise RuntimeError("wasmtime-py's value layout is not the one approval_sink._abi reads")
    finally:
        ffi.wasmtime_component_val_delete(byref(val))
