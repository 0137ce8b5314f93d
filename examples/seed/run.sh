#!/usr/bin/env bash
# The seed example (see README.md): transfer the md5_* names from a miredo built
# with symbols to Debian's official, stripped fdupes, and check them.
#
#   examples/seed/run.sh                 # everything
#   examples/seed/run.sh --prepare-only  # steps 1-4 only (downloads, builds, md5_init scan)
#   examples/seed/run.sh --refresh       # also re-run "apt-get update" of the private lists
#
# Needs: Debian/Ubuntu-style apt, dpkg-dev, gcc, make, autoconf/automake, binutils,
# python3; build dependencies are installed with apt-get when missing (root only).
# Network: only the Debian archive named in /etc/apt/sources.list*.
# Everything is cached in examples/seed/work/ (git-ignored); delete it to start over.
#
# Environment overrides:
#   FDUPES_SUITE   suite of the official fdupes .deb and its source   (default: bookworm)
#   MIREDO_SUITES  suites tried in order for the miredo source        (default: "sid trixie bookworm bullseye")
#   DEBIAN_MIRROR  archive URL (default: read from /etc/apt/sources.list*)
#   SYMBRIDGE      command that runs the CLI (default: symbridge, else python -m fallback)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=$HERE/work
PREPARE_ONLY=0
REFRESH=0
for arg in "$@"; do
    case "$arg" in
        --prepare-only) PREPARE_ONLY=1 ;;
        --refresh) REFRESH=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

FDUPES_SUITE=${FDUPES_SUITE:-bookworm}
MIREDO_SUITES=${MIREDO_SUITES:-"sid trixie bookworm bullseye"}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

mkdir -p "$WORK"
cd "$WORK"

# ---------------------------------------------------------------------------
# 0. a private apt configuration (the system's apt state is not touched)
# ---------------------------------------------------------------------------
find_mirror() {
    # First URI of an enabled "deb" entry for a plain suite (no -security/-updates),
    # from one-line *.list files and deb822 *.sources files.
    python3 - <<'EOF'
import glob, re, sys
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
        + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
cands = []
for f in files:
    try:
        text = open(f, encoding="utf-8", errors="replace").read()
    except OSError:
        continue
    if f.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
                continue
            suites = fields.get("suites", "").split()
            for uri in fields.get("uris", "").split():
                cands.append((uri, suites))
    else:
        for line in text.splitlines():
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                cands.append((line[1], [line[2]]))
for uri, suites in cands:
    if any("-" not in s and "/" not in s for s in suites) and "security" not in uri:
        print(uri.rstrip("/"))
        sys.exit(0)
sys.exit("no usable Debian mirror found in /etc/apt/sources.list*")
EOF
}

MIRROR=${DEBIAN_MIRROR:-$(find_mirror)} || die "cannot determine the Debian mirror"
APTDIR=$WORK/apt
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
{
    for s in $FDUPES_SUITE $MIREDO_SUITES; do
        echo "deb [signed-by=$KEYRING] $MIRROR $s main"
        echo "deb-src [signed-by=$KEYRING] $MIRROR $s main"
    done
} | awk '!seen[$0]++' > "$APTDIR/sources.list.new"
if ! cmp -s "$APTDIR/sources.list.new" "$APTDIR/sources.list" 2>/dev/null; then
    mv "$APTDIR/sources.list.new" "$APTDIR/sources.list"
    REFRESH=1
else
    rm -f "$APTDIR/sources.list.new"
fi
APTOPTS=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
         -o APT::Architecture=amd64 -o APT::Sandbox::User=root -q)
if [ "$REFRESH" = 1 ] || ! ls "$APTDIR"/lists/*Sources* >/dev/null 2>&1; then
    log "apt-get update (private lists in $APTDIR, mirror $MIRROR)"
    apt-get "${APTOPTS[@]}" update >&2
fi

# version of PACKAGE in SUITE, from the private lists; KIND is "Packages" or "Sources"
version_in() {
    apt-cache "${APTOPTS[@]}" madison "$1" |
        awk -F'|' -v s=" $2/main" -v k="$3" 'index($3, s) && index($3, k) {gsub(/ /, "", $2); print $2; exit}'
}

need_pkgs() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing build dependencies: ${missing[*]} (install them, or run as root)"
        log "installing build dependencies: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${missing[@]}" >&2
    fi
}

# Debian's default build flags (as dh would use them), for the current directory
deb_flags() {
    DEB_BUILD_MAINT_OPTIONS=${DEB_BUILD_MAINT_OPTIONS:-hardening=+all} dpkg-buildflags --get "$1"
}

need_pkgs dpkg-dev gcc make binutils xz-utils autoconf automake pkg-config

# ---------------------------------------------------------------------------
# 1. official, stripped fdupes from Debian
# ---------------------------------------------------------------------------
FDUPES_VERSION=$(version_in fdupes "$FDUPES_SUITE" Packages)
[ -n "$FDUPES_VERSION" ] || die "fdupes not found in $FDUPES_SUITE"
FDUPES_UPSTREAM=${FDUPES_VERSION#*:}; FDUPES_UPSTREAM=${FDUPES_UPSTREAM%-*}
if [ ! -x "$WORK/fdupes" ]; then
    log "1. downloading fdupes $FDUPES_VERSION ($FDUPES_SUITE, amd64)"
    mkdir -p deb && rm -rf deb/fdupes-root
    (cd deb && apt-get "${APTOPTS[@]}" download "fdupes=$FDUPES_VERSION" >&2)
    dpkg-deb -x deb/fdupes_*"${FDUPES_UPSTREAM}"*_amd64.deb deb/fdupes-root
    cp deb/fdupes-root/usr/bin/fdupes "$WORK/fdupes.tmp" && mv "$WORK/fdupes.tmp" "$WORK/fdupes"
fi
echo "official fdupes: $FDUPES_VERSION from $FDUPES_SUITE -> $WORK/fdupes" >&2
file "$WORK/fdupes" | grep stripped >/dev/null || echo "warning: $WORK/fdupes is not stripped?" >&2

# ---------------------------------------------------------------------------
# 2. miredo with symbols, md5 linked in (--disable-shared)
# ---------------------------------------------------------------------------
MIREDO_DONE=$WORK/miredo.version
if [ ! -x "$WORK/miredo" ] || [ ! -s "$MIREDO_DONE" ]; then
    need_pkgs libcap2-dev libjudy-dev
    mkdir -p src/miredo
    MIREDO_VERSION=""
    for s in $MIREDO_SUITES; do
        v=$(version_in miredo "$s" Sources)
        [ -n "$v" ] || continue
        log "2. downloading the miredo source package $v ($s)"
        # The archive may lack some files of a source package (e.g. the Debian
        # tarball); the upstream tarball is enough to build the program.
        (cd src/miredo && apt-get "${APTOPTS[@]}" source --download-only "miredo=$v" >&2) ||
            echo "warning: apt-get source miredo=$v did not fetch every file" >&2
        up=${v#*:}; up=${up%-*}
        if ls src/miredo/miredo_"$up".orig.tar.* >/dev/null 2>&1; then
            MIREDO_VERSION="$v ($s)"
            break
        fi
    done
    [ -n "$MIREDO_VERSION" ] || die "could not download the miredo source from: $MIREDO_SUITES"
    up=${MIREDO_VERSION%% *}; up=${up#*:}; deb_rev=$up; up=${up%-*}
    rm -rf build/miredo && mkdir -p build
    if [ -f src/miredo/miredo_"$deb_rev".dsc ] && ls src/miredo/miredo_"$deb_rev".debian.tar.* >/dev/null 2>&1; then
        dpkg-source --no-check -x src/miredo/miredo_"$deb_rev".dsc build/miredo >&2
        MIREDO_VERSION="$MIREDO_VERSION, Debian patches applied"
    else
        echo "note: the Debian packaging of miredo $deb_rev is not on the mirror; building upstream $up" >&2
        mkdir -p build/miredo
        tar -xf src/miredo/miredo_"$up".orig.tar.* -C build/miredo --strip-components=1
        MIREDO_VERSION="$MIREDO_VERSION, upstream tarball only (Debian diff not available)"
    fi
    log "2. building miredo (--disable-shared, with symbols)"
    (
        cd build/miredo
        [ -x configure ] || autoreconf -fi >&2
        # --disable-nls turns _("...") into a plain literal, which trips Debian's
        # -Werror=format-security in packets.c (the Debian patches are not applied here)
        ./configure --disable-shared --enable-static --disable-nls \
            CFLAGS="$(deb_flags CFLAGS) -Wno-error=format-security" CPPFLAGS="$(deb_flags CPPFLAGS)" LDFLAGS="$(deb_flags LDFLAGS)" \
            > ../miredo-configure.log 2>&1 || { tail -30 ../miredo-configure.log >&2; exit 1; }
        make -j"$(nproc)" > ../miredo-make.log 2>&1 || { tail -30 ../miredo-make.log >&2; exit 1; }
    )
    cp build/miredo/src/miredo "$WORK/miredo"
    echo "$MIREDO_VERSION" > "$MIREDO_DONE"
fi
echo "miredo: $(cat "$MIREDO_DONE") -> $WORK/miredo" >&2
readelf -sW "$WORK/miredo" | grep -w md5_process >/dev/null || die "miredo has no md5_process symbol"

# ---------------------------------------------------------------------------
# 3. fdupes rebuilt from the same Debian source, with symbols (ground truth)
# ---------------------------------------------------------------------------
if [ ! -x "$WORK/fdupes-rebuilt" ]; then
    need_pkgs libncurses-dev libpcre2-dev
    mkdir -p src/fdupes
    log "3. downloading the fdupes source package $FDUPES_VERSION"
    (cd src/fdupes && apt-get "${APTOPTS[@]}" source --download-only "fdupes=$FDUPES_VERSION" >&2)
    rm -rf build/fdupes && mkdir -p build
    dpkg-source --no-check -x src/fdupes/fdupes_"${FDUPES_VERSION#*:}".dsc build/fdupes >&2
    [ -f build/fdupes/md5/md5.c ] || die "fdupes $FDUPES_VERSION has no md5/md5.c; pick another FDUPES_SUITE"
    log "3. building fdupes with Debian's build flags, not stripped"
    (
        cd build/fdupes
        autoreconf -fi > ../fdupes-autoreconf.log 2>&1 || { tail -30 ../fdupes-autoreconf.log >&2; exit 1; }
        ./configure --prefix=/usr \
            CFLAGS="$(deb_flags CFLAGS)" CPPFLAGS="$(deb_flags CPPFLAGS)" LDFLAGS="$(deb_flags LDFLAGS)" \
            > ../fdupes-configure.log 2>&1 || { tail -30 ../fdupes-configure.log >&2; exit 1; }
        make -j"$(nproc)" > ../fdupes-make.log 2>&1 || { tail -30 ../fdupes-make.log >&2; exit 1; }
    )
    cp build/fdupes/fdupes "$WORK/fdupes-rebuilt"
fi
echo "rebuilt fdupes (symbols): $WORK/fdupes-rebuilt" >&2

# ---------------------------------------------------------------------------
# 4. find md5_init in the stripped official fdupes: the function that stores the
#    MD5 initial values, either as immediates or (gcc -O2 vectorises md5_init)
#    by loading them from .rodata.
# ---------------------------------------------------------------------------
log "4. scanning the official fdupes for the MD5 initial constants"
python3 - "$WORK/fdupes" > "$WORK/md5_init.addr" <<'EOF'
import re, struct, subprocess, sys
path = sys.argv[1]
CONSTS = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
run = lambda *a: subprocess.run(a, capture_output=True, text=True, check=True).stdout

# function ranges from .eh_frame (kept by strip)
fdes = []
for m in re.finditer(r"FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)", run("readelf", "--debug-dump=frames", path)):
    fdes.append((int(m.group(1), 16), int(m.group(2), 16)))
fdes.sort()

# where the constants lie in non-executable loaded data
data = open(path, "rb").read()
hits = {}  # vaddr -> constant
for line in run("readelf", "-lW", path).splitlines():
    f = line.split()
    if f and f[0] == "LOAD" and "E" not in "".join(f[7:-1]):
        off, vaddr, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
        seg = data[off:off + filesz]
        for c in CONSTS:
            i = seg.find(struct.pack("<I", c))
            while i >= 0:
                hits[vaddr + i] = c
                i = seg.find(struct.pack("<I", c), i + 1)

score = {}   # function start -> set of constants
insns = []   # (address, text), in order
for line in run("objdump", "-d", "--no-show-raw-insn", path).splitlines():
    m = re.match(r"\s+([0-9a-f]+):\s+(.*)", line)
    if not m:
        continue
    addr, text = int(m.group(1), 16), m.group(2)
    insns.append((addr, text))
    found = set()
    for imm in re.findall(r"\$0x([0-9a-f]+)", text):          # immediates (movl/movabs)
        for c in CONSTS:
            if f"{c:08x}" in imm:
                found.add(c)
    ref = re.search(r"#\s*([0-9a-f]+)", text)                  # rip-relative loads
    if ref and "(%rip)" in text:
        target = int(ref.group(1), 16)
        ops = text.split("#")[0].strip()
        width = (32 if "%ymm" in ops else 16 if "%xmm" in ops
                 else 8 if re.search(r",%r(?:[a-z]{2}|\d+)$", ops) else 4)
        found |= {c for a, c in hits.items() if target <= a < target + width}
    if found:
        start = next((lo for lo, hi in reversed(fdes) if lo <= addr < hi), None)
        if start is None:  # no FDE: the function starts after the previous ret/jmp/padding
            start = addr
            for a, t in reversed(insns[:-1]):
                if t.startswith(("ret", "jmp", "nop", "int3", "xchg   %ax,%ax", "cs nopw", "data16")):
                    break
                start = a
        score.setdefault(start, set()).update(found)

rets = [a for a, t in insns if t.startswith("ret")]
def size_of(start):  # from the FDE, else up to the first ret (md5_init is tiny)
    fde = next((hi - lo for lo, hi in fdes if lo == start), None)
    return fde if fde is not None else min((r - start + 1 for r in rets if r >= start), default=1 << 30)
best = [(len(s), -size_of(a), a) for a, s in score.items()]
best.sort(reverse=True)
for n, negsize, a in best[:5]:
    print(f"  candidate {a:#x}: {n}/4 constants, size {-negsize if -negsize < 1 << 30 else '?'}", file=sys.stderr)
if not best or best[0][0] < 3:
    sys.exit("no function stores the MD5 initial constants")
print(f"{best[0][2]:#x}")
EOF
ADDR=$(cat "$WORK/md5_init.addr")
echo "md5_init in the official fdupes: $ADDR" >&2

# ground truth from the rebuild
truth() { readelf -sW "$WORK/fdupes-rebuilt" | awk -v n="$1" '$4=="FUNC" && $8==n {print "0x" substr($2, match($2, /[1-9a-f]/)), $3; exit}'; }
echo >&2
echo "rebuilt fdupes (ground truth):" >&2
for n in md5_init md5_append md5_process md5_finish; do printf '  %-12s %s\n' "$n" "$(truth $n)" >&2; done

if [ "$PREPARE_ONLY" = 1 ]; then
    echo
    echo "prepared: $WORK/miredo (reference), $WORK/fdupes (target, stripped), md5_init=$ADDR"
    exit 0
fi

# ---------------------------------------------------------------------------
# 5. symbridge: the seed's analogy query, then the whole transfer
# ---------------------------------------------------------------------------
if [ -n "${SYMBRIDGE:-}" ]; then
    read -r -a SB <<< "$SYMBRIDGE"
elif command -v symbridge >/dev/null 2>&1; then
    SB=(symbridge)
else
    SB=(env "PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}" python3 -c
        'import sys; from symbridge.cli import main; sys.argv[0] = "symbridge"; sys.exit(main())')
fi

log "5. symbridge analogy miredo fdupes --anchor md5_init=$ADDR --query md5_process --top 5"
"${SB[@]}" analogy "$WORK/miredo" "$WORK/fdupes" --anchor "md5_init=$ADDR" --query md5_process \
    --top 5 --json "$WORK/analogy.json"

log "5. symbridge transfer miredo fdupes --json out.json"
"${SB[@]}" transfer "$WORK/miredo" "$WORK/fdupes" --json "$WORK/out.json" > "$WORK/transfer.log" 2>&1 ||
    { cat "$WORK/transfer.log" >&2; die "symbridge transfer failed"; }

log "results"
python3 - "$WORK" "$ADDR" <<'EOF'
import json, re, subprocess, sys
work, anchor = sys.argv[1], int(sys.argv[2], 16)
NAMES = ["md5_init", "md5_append", "md5_process", "md5_finish"]
run = lambda *a: subprocess.run(a, capture_output=True, text=True, check=True).stdout

def fdes(path):
    return sorted((int(a, 16), int(b, 16) - int(a, 16))
                  for a, b in re.findall(r"FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)",
                                         run("readelf", "--debug-dump=frames", path)))

truth = {}
for line in run("readelf", "-sW", f"{work}/fdupes-rebuilt").splitlines():
    f = line.split()
    if len(f) >= 8 and f[3] == "FUNC" and f[7] in NAMES:
        truth[f[7]] = (int(f[1], 16), int(f[2]))
reb, off = fdes(f"{work}/fdupes-rebuilt"), fdes(f"{work}/fdupes")
reb_idx = {a: i for i, (a, _) in enumerate(reb)}
off_idx = {a: i for i, (a, _) in enumerate(off)}

# what the official build should hold, by function order relative to md5_init
expected = {}
if "md5_init" in truth and anchor in off_idx and truth["md5_init"][0] in reb_idx:
    base_r, base_o = reb_idx[truth["md5_init"][0]], off_idx[anchor]
    for n, (a, size) in truth.items():
        if a in reb_idx:
            j = base_o + reb_idx[a] - base_r
            if 0 <= j < len(off):
                expected[n] = off[j]

analogy = json.load(open(f"{work}/analogy.json"))["results"]
result = json.load(open(f"{work}/out.json"))
by_name = {}
for fn in result["functions"]:
    if fn.get("name") in NAMES:
        by_name.setdefault(fn["name"], fn)
best_cand = {}
for fn in result["functions"]:
    for c in fn.get("candidates", [])[:1]:
        if c["name"] in NAMES and (c["name"] not in best_cand or c["score"] > best_cand[c["name"]][1]):
            best_cand[c["name"]] = (fn["address"], c["score"])

print("analogy query md5_process - md5_init(miredo) + fdupes@%#x, top 5:" % anchor)
for r in analogy:
    print(f"  {r['address']:#8x}  score {r['score']:.3f}  {r.get('name') or ''}")
print()
hdr = f"{'name':<12} {'symbridge':>10} {'conf':>5}  {'official (order/size)':>22}  {'rebuilt truth':>16}  ok"
print(hdr)
print("-" * len(hdr))
for n in NAMES:
    fn = by_name.get(n)
    if fn:
        got, conf = fn["address"], f"{fn['confidence']:.2f}"
    elif n in best_cand:
        got, conf = best_cand[n][0], "cand"
    else:
        got, conf = None, "-"
    exp = expected.get(n)
    t = truth.get(n)
    ok = "?" if exp is None or got is None else ("yes" if got == exp[0] else "NO")
    if n == "md5_init" and got is not None:
        ok += " (stores MD5 constants)" if got == anchor else " (not the constant-storing function)"
    print(f"{n:<12} {got if got is None else hex(got):>10} {conf:>5}  "
          f"{(hex(exp[0]) + ' size ' + str(exp[1])) if exp else '?':>22}  "
          f"{(hex(t[0]) + ' size ' + str(t[1])) if t else '?':>16}  {ok}")
# every function (FDE) from md5_process to md5_finish: same sizes in the same order?
window_same = False
if len(expected) == len(NAMES) and len(truth) == len(NAMES):
    idx = [reb_idx[truth[n][0]] for n in NAMES]
    lo, hi = min(idx), max(idx)
    shift = off_idx[anchor] - reb_idx[truth["md5_init"][0]]
    window_same = all(0 <= i + shift < len(off) and off[i + shift][1] == reb[i][1] for i in range(lo, hi + 1))
    print(f"\n{hi - lo + 1} functions from the first to the last md5 function; same sizes in the same"
          f" order in both builds: {'yes' if window_same else 'no'}"
          f" (FDEs in all: rebuild {len(reb)}, official {len(off)})")
if window_same:
    print("So the 'official' column is where the md5 functions of the official build are.")
else:
    print("The builds differ around md5_init: the 'official' column is a guess by function order only.")
EOF
