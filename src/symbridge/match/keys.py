"""What the matcher and the library know functions by, apart from their vectors: identical code and constants
(code_keys, data_keys), thunks and short wrappers, the call graph with the callbacks of tables of code pointers,
the names functions are registered under, and the functions whose addresses they store."""

from __future__ import annotations

import bisect
import hashlib

import numpy as np

from ..analysis.slots import stored_pointer_groups


WRAPPER_MAX_LEN = 6  # instructions: a thunk, or a wrapper that sets up arguments and jumps on

def is_wrapper(mnemonics: list[str], max_len: int = WRAPPER_MAX_LEN) -> bool:
    """At most max_len instructions that end in a jump with no other jump, call or return before it: a thunk
    (``jmp f``) or a wrapper that sets up arguments and tail-calls (``xor ecx, ecx; jmp f_ex``)."""
    if not mnemonics or mnemonics[-1] != "jmp" or len(mnemonics) > max_len:
        return False
    return not any(m.startswith(("j", "call", "ret", "loop")) for m in mnemonics[:-1])

def wrappers(functions: list) -> list[bool]:
    """is_wrapper of each function's instructions (what blend_thunks and the library take)."""
    return [is_wrapper(f.facts.mnemonics) for f in functions]

def stable_hash(value) -> int:
    """A 63-bit hash of a value's repr (tuples of str, bytes and int), the same in every process (Python's
    hash() of a str is not): the library stores the code and data keys of its functions."""
    return int.from_bytes(hashlib.blake2b(repr(value).encode(), digest_size=8).digest(), "little") >> 1

def code_keys(functions: list, cet_blind: bool = False) -> list[int | None]:
    """A hash of each function's normalised code with its imports and strings (None for a function without
    instructions): equal keys are identical code. With `cet_blind` a leading `endbr64` (the landing pad of
    Intel CET, which one build has and another built without -fcf-protection not: Debian's trixie against
    bullseye) is no part of the code (a function of `endbr64` alone keeps it); without it, the keys libraries of
    schema version 7 and earlier stored."""
    out: list[int | None] = []
    for fx in (f.facts for f in functions):
        tokens = fx.tokens
        if cet_blind and len(tokens) > 1 and tokens[0] == "endbr64":
            tokens = tokens[1:]
        out.append(stable_hash((tuple(tokens), tuple(fx.imports), tuple(fx.strings))) if tokens else None)
    return out

def field_shapes(functions: list) -> list[tuple | None]:
    """Each function's struct field accesses as (shape, offsets): its shape is what it does apart from which
    fields (its instructions' mnemonics without a leading `endbr64`, the width of each field access, its
    imports, strings and small immediates), its offsets the fields' displacements in order; None for a
    function that accesses no field. Two functions of one shape whose offsets differ by one constant are the
    same accessor of a struct whose fields moved (Matcher.repair_shifted_runs)."""
    out: list[tuple | None] = []
    for fx in (f.facts for f in functions):
        if not fx.offsets:
            out.append(None)
            continue
        ms = fx.mnemonics[1:] if fx.mnemonics[:1] == ["endbr64"] else fx.mnemonics
        out.append((stable_hash((tuple(ms), tuple(fx.widths), tuple(fx.imports), tuple(fx.strings),
                                 tuple(fx.small))), tuple(fx.offsets)))
    return out

def data_keys(functions: list, window: int = 16) -> list[int | None]:
    """A hash of the constants each function uses: the first `window` bytes at each RIP-relative data address
    in .rodata (elsewhere: the strings that the object's first pointers point to), its exact small immediates
    and the large ones that are no addresses, in order; None for a function that uses none. Twins whose code
    is the same and whose constants differ (sha224_init and sha256_init load different initial values,
    aes128_encrypt and aes192_encrypt pass 10 and 12 rounds, OpenSSL's d2i_OCSP_ONEREQ and d2i_OCSP_REQINFO
    pass ASN1_ITEMs named "OCSP_ONEREQ" and "OCSP_REQINFO" in relocated data) differ here."""
    if not functions:
        return []
    img = functions[0].binary.image
    out: list[int | None] = []
    for f in functions:
        fx = f.facts
        blobs = [b for a in fx.data_refs if (b := img.referenced_data(a, window))]
        numbers = [v for v in fx.constants if img.section_at(v) is None]
        out.append(stable_hash((tuple(blobs), tuple(fx.small), tuple(numbers))) if blobs or fx.small or numbers
                   else None)
    return out

def callee_addresses(functions: list) -> list[list[int]]:
    """What counts as a function's callees, by address: the functions it calls, those whose address it takes,
    and the callbacks of the tables it refers to (table_refs). build_side and the library both use it."""
    return [f.callees + f.facts.code_refs + through for f, through in zip(functions, table_refs(functions))]

def table_refs(functions: list, span: int = 256, limit: int = 32) -> list[list[int]]:
    """The functions each function reaches through a table of code pointers it refers to (an ops struct of
    callbacks, a command table): the pointers to function starts from the referred address up to `span` bytes
    on, stopping where another function's data reference begins (the next object), at most `limit` a function.
    They join the call graph: `skbedit_exit` and `mirred_exit` look alike, but each refers to its own module's
    callbacks."""
    out: list[list[int]] = [[] for _ in functions]
    if not functions:
        return out
    slots, targets = functions[0].binary.image.pointer_table()
    if not len(slots):
        return out
    owner = np.array([i for i, f in enumerate(functions) for _ in dict.fromkeys(f.facts.object_refs)], np.int64)
    refs = np.array([d for f in functions for d in dict.fromkeys(f.facts.object_refs)], np.uint64)
    objects = np.unique(refs)
    nxt = np.searchsorted(objects, refs, side="right")
    ends = np.minimum(refs + np.uint64(span), np.append(objects, np.uint64(2**64 - 1))[nxt])
    lo, hi = np.searchsorted(slots, refs), np.searchsorted(slots, ends)
    starts = {f.address for f in functions}
    for k in np.flatnonzero(hi > lo).tolist():  # in reference order, so `limit` keeps the first tables
        i = int(owner[k])
        if len(out[i]) < limit:
            out[i] += [t for t in targets[lo[k]:hi[k]].tolist() if t in starts][:limit - len(out[i])]
    return out

def table_runs(functions: list, gap: int = 32, min_len: int = 3) -> list[list[tuple[int, int]]]:
    """Pointers to function starts laid out one after another in data (a command table, a table of {id,
    handler} entries, the callbacks of an ops struct), as (slot address, function index) in table order: a new
    table begins where the next pointer is more than `gap` bytes on or in another section."""
    if not functions:
        return []
    img = functions[0].binary.image
    slots, targets = img.pointer_table()
    index = {f.address: i for i, f in enumerate(functions)}
    bounds = sorted(sec.addr for sec in img.sections if sec.size)  # a table does not run on into the next section
    runs: list[list[tuple[int, int]]] = []
    run: list[tuple[int, int]] = []
    for slot, t in zip(slots.tolist(), targets.tolist()):
        j = index.get(t)
        if j is None:
            continue
        if run and (slot - run[-1][0] > gap or
                    bisect.bisect_right(bounds, run[-1][0]) != bisect.bisect_right(bounds, slot)):
            if len(run) >= min_len:
                runs.append(run)
            run = []
        run.append((slot, j))
    if len(run) >= min_len:
        runs.append(run)
    return runs

def pointer_tables(functions: list) -> list[list[int]]:
    """The function indices of each table_runs table, in table order."""
    return [[j for _, j in run] for run in table_runs(functions)]

def table_keys(functions: list) -> list[set[str]]:
    """The name each function is registered under in a table of {name, handler} or {handler, name} entries
    (Lua's luaL_Reg, a command table): the string that the word before (or after) each handler points to,
    whichever side holds a string in more of the table's entries (the other side is the next entry's name).
    As "table:NAME" among the function's strings, a name unique on both sides seeds a match."""
    keys: list[set[str]] = [set() for _ in functions]
    if not functions:
        return keys
    img = functions[0].binary.image
    for run in table_runs(functions, min_len=2):
        names = {}
        for side in (-8, 8):
            found = [img.c_string(v) if (v := img.pointer_value(slot + side)) is not None else None
                     for slot, _ in run]
            names[side] = [n if n and len(n) >= 2 else None for n in found]
        hits = {side: sum(n is not None for n in ns) for side, ns in names.items()}
        if hits[-8] == hits[8]:
            continue
        side = -8 if hits[-8] > hits[8] else 8
        for (_, j), name in zip(run, names[side]):
            if name is not None:
                keys[j].add("table:" + name)
    return keys

def stored_slots(functions: list) -> list[list[dict]]:
    """For each function, the functions whose address it stores into a struct field or passes to a call
    (analysis.slots.stored_pointer_groups: the whole function's, then those of runs of its code), as indices
    into `functions`, by slot: the field's offset, ("imp", name, argument) for an imported callee, ("fn",
    callee index, argument) for one of `functions`. Only functions that take addresses are read again."""
    if not functions:
        return []
    img, plt = functions[0].binary.image, functions[0].binary.plt_names
    index = {f.address: i for i, f in enumerate(functions)}
    out: list[list[dict]] = []
    for i, f in enumerate(functions):
        groups = []
        for found in stored_pointer_groups(img, f.address, f.size, index.keys()) if f.facts.code_refs else ():
            slots: dict = {}
            for key, a in found.items():
                if index[a] == i:
                    continue
                if isinstance(key, tuple):
                    callee, arg = key
                    if callee in plt:
                        key = ("imp", plt[callee], arg)
                    elif callee in index:
                        key = ("fn", index[callee], arg)
                    else:
                        continue
                slots[key] = index[a]
            if slots:
                groups.append(slots)
        out.append(groups)
    return out

def exported_addresses(binary) -> set[int]:
    """The addresses of the functions the binary exports (.dynsym; known even when their names are blanked)."""
    return {s.address for s in binary.image.symbols
            if s.table == "dynsym" and s.defined and s.kind in ("STT_FUNC", "STT_GNU_IFUNC")}
