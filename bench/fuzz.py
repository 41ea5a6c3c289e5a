"""Mutation fuzzing of the manifests and snapshots the tool reads.

    python -m bench.fuzz [--manifests 2000] [--environments 300] [--snapshots 100] [--seed 14]

Each case mutates the shipped `config/` (deleted keys, swapped types, huge
strings, deep nesting, unicode confusables, YAML 1.1 spellings, broken bytes,
file-system oddities) or the demo snapshot, and runs the real CLI on it in a
forked child with CPU, memory and wall-time limits and its sockets guarded:
`validate` for manifests, `plan --target emulator:` for some manifests and
every snapshot (the embedded emulator may use loopback; nothing else may).

Environment cases do the same to the two-environment example
(`examples/environments/config`: environments.yaml and its layers), then
`validate` every environment or `plan --all-envs` against the staging
snapshot (dr's instance is then refused, as a mismatched snapshot is).

CSV manifests get mutations of their own (cells, columns, quotes, rows,
levels as spreadsheets write them). `validate` runs with `--format json`, so
that every error it reports can be checked to name a file, a line and a
column.

A case is *clean* when the CLI exits 0-3 with no traceback; *crashed* when
the child dies by a signal or a limit; *traceback* when Python's traceback
or the CLI's "unexpected" failure line shows; *network* when it tried to
reach anything but loopback; *unlocated* when an invalid manifest set's
errors are not all positioned. Prints one line per failure and

    RESULT fuzz tried=N clean=N crashed=N traceback=N network=N unlocated=N

and exits 1 if any case was not clean.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
SNAPSHOT = ROOT / "examples" / "demo-snapshot.json"
ENVIRONMENTS = ROOT / "examples" / "environments"

CPU_SECONDS = 30
WALL_SECONDS = 45.0
MEMORY_BYTES = 2 * 1024**3
THREAD_STACK_BYTES = 1024**2  # thread stacks count against the memory limit
NETWORK_MARK = "FUZZ-NETWORK-CALL"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}

# -- mutations -------------------------------------------------------------------

# Cyrillic look-alikes of Latin letters.
CONFUSABLES = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441"}
CONFUSABLES |= {"x": "\u0445", "i": "\u0456", "S": "\u0405"}
ODD_SCALARS = [
    "yes", "no", "on", "off", "Y", "0b100", "4_", "0x_4", "1_000", "010", "0o7", "0x1F", "1e3",
    ".inf", "-.inf", ".nan", "~", "null", "2024-01-01", "12:30:00", "!!python/object:os.system",
    "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "<<", "=", "'", '"', "&a", "*a",
    "-", "?", ":", "|", ">", "%YAML 1.1", "@", "`", "9" * 5000, "-1", "0", "6", "3.5", "true",
]  # fmt: skip
ODD_TEXT = [
    "\t", "\x00", "\ufeff", "\u200b", "\u202e", "\r", "\x85", "\u2028", "é", "\U0001f600",
    "{", "}", "[", "]", "&x ", "*x", "<<: *x", "--- ", "...", "# ", "%TAG ! tag:x,2000:",
]  # fmt: skip
VALUES: list[Callable[[random.Random], Any]] = [
    lambda r: None,
    lambda r: r.choice([True, False]),
    lambda r: r.choice([0, -1, 6, 4.5, 10**30, float("inf")]),
    lambda r: [],
    lambda r: {},
    lambda r: ["x"] * r.randint(1, 600),
    lambda r: {"x": "y"},
    lambda r: "x" * r.choice([101, 10_000, 1_000_000]),
    lambda r: r.choice(ODD_SCALARS),
    lambda r: "".join(r.choice(ODD_TEXT) for _ in range(5)),
    lambda r: "connect:Reserved",
]


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a key or item in `data`."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((*prefix, index))
            found.extend(_paths(value, (*prefix, index)))
    return found


def _parent(data: Any, path: tuple) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _confusable(text: str, rng: random.Random) -> str:
    chars = list(text)
    spots = [i for i, c in enumerate(chars) if c in CONFUSABLES]
    if spots:
        index = rng.choice(spots)
        chars[index] = CONFUSABLES[chars[index]]
    else:
        chars.insert(rng.randint(0, len(chars)), rng.choice(["\u200b", "\u00a0", "\u0301"]))
    return "".join(chars)


def mutate_data(data: Any, rng: random.Random) -> tuple[str, Any]:
    """One structural mutation of parsed data; (its name, the new data)."""
    data = copy.deepcopy(data)
    paths = _paths(data)
    if not paths:
        return "replace whole", rng.choice(VALUES)(rng)
    path = rng.choice(paths)
    parent, last = _parent(data, path), path[-1]
    kind = rng.choice(["delete", "swap", "swap", "confusable key", "duplicate", "rename"])
    if kind == "delete":
        del parent[last]
    elif kind == "swap":
        parent[last] = rng.choice(VALUES)(rng)
    elif kind == "confusable key" and isinstance(parent, dict):
        parent[_confusable(str(last), rng)] = parent.pop(last)
    elif kind == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    elif isinstance(parent, dict):
        parent[rng.choice(["", " ", "X" * 200, "Users", "user", str(last).upper()])] = parent.pop(
            last
        )
    else:
        parent[last] = _confusable(str(parent[last]), rng)
    return f"{kind} {'.'.join(map(str, path))[:60]}", data


def mutate_text(text: str, rng: random.Random) -> tuple[str, bytes]:
    """One textual mutation: bytes the YAML or JSON parser must survive."""
    kind = rng.choice(
        ["deep flow", "deep block", "insert", "truncate", "bad utf-8", "odd scalar", "bomb", "tabs"]
    )
    cut = rng.randint(0, len(text))
    if kind == "deep flow":
        depth = rng.choice([65, 1000, 30_000, 200_000])
        opener, closer = rng.choice([("[", "]"), ("{a: ", "}"), ("[", "")])
        text = text[:cut] + opener * depth + closer * depth + text[cut:]
    elif kind == "deep block":
        depth = rng.choice([70, 3000])
        text = text[:cut] + "\n" + "- " * depth + "x\n" + text[cut:]
    elif kind == "insert":
        text = text[:cut] + rng.choice(ODD_TEXT) + text[cut:]
    elif kind == "truncate":
        text = text[:cut]
    elif kind == "bad utf-8":
        raw = text.encode()
        spot = rng.randint(0, len(raw))
        return kind, raw[:spot] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + raw[spot:]
    elif kind == "odd scalar":
        lines = text.splitlines(keepends=True)
        index = rng.randrange(len(lines)) if lines else 0
        if lines and ":" in lines[index]:
            head = lines[index].split(":", 1)[0]
            lines[index] = f"{head}: {rng.choice(ODD_SCALARS)}\n"
        text = "".join(lines)
    elif kind == "bomb":
        levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]"
                   for i in range(9)]  # fmt: skip
        text = "\n".join(levels) + "\n" + text
    else:
        text = text.replace("  ", "\t", rng.randint(1, 3))
    return kind, text.encode("utf-8", "surrogatepass")


ODD_CELLS = ["0", "6", "3.5", "3.0", "three", "", " ", "-1", "1e3", "٣", "\x00", '"', "a,b",
             "connect:Language", "Langauge", "x" * 300, "\ufeff", "\u200b", "4 ",
             "=1+1"]  # fmt: skip


def mutate_csv(text: str, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of a CSV manifest, as spreadsheets and hands make them."""
    lines = text.splitlines()
    kind = rng.choice(["cell", "cell", "drop column", "add column", "duplicate row", "quote",
                       "extra cell", "missing cell", "crlf", "bom", "header only", "many",
                       "wide", "text"])  # fmt: skip
    row = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
    cells = lines[row].split(",")
    if kind == "cell":
        cells[rng.randrange(len(cells))] = rng.choice(ODD_CELLS)
        lines[row] = ",".join(cells)
    elif kind in ("drop column", "add column"):
        column = rng.randrange(len(lines[0].split(",")))
        for index, line in enumerate(lines):
            parts = line.split(",")
            if kind == "drop column" and column < len(parts):
                del parts[column]
            elif kind == "add column":
                parts.insert(
                    column, rng.choice(["note", "Level", "username", "x:y"]) if index == 0 else "n"
                )
            lines[index] = ",".join(parts)
    elif kind == "duplicate row":
        lines.insert(row, lines[row])
    elif kind == "quote":
        lines[row] = lines[row].replace(",", ',"', 1)
    elif kind in ("extra cell", "missing cell"):
        lines[row] = lines[row] + ",x" if kind == "extra cell" else lines[row].rsplit(",", 1)[0]
    elif kind == "crlf":
        return kind, ("\r\n".join(lines) + rng.choice(["\r\n", "", "\n\n", "\r"])).encode()
    elif kind == "bom":
        return kind, b"\xef\xbb\xbf" + "\n".join(lines).encode() + rng.choice([b"", b"\xff"])
    elif kind == "header only":
        lines = lines[:1]
    elif kind == "many":
        name = cells[0] if row else "someone@example.com"
        lines += [f"{name},Language,Value{n},3" for n in range(12)]
    elif kind == "wide":
        lines = ["username,Language:Spanish,Skill:Billing,Language:", f"{cells[0]},4,,3"]
    else:
        return mutate_text(text, rng)
    return kind, "\n".join(lines).encode("utf-8", "surrogatepass")


def _dump_yaml(data: Any) -> str:
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.dump(data, stream)
    return stream.getvalue()


FS_ODDITIES = ["dangling symlink", "symlink loop", "dir loop", "non-utf8 name", "fifo", "empty"]
FS_ODDITIES += ["dir named yaml", "unreadable"]


def add_fs_oddity(config: Path, rng: random.Random) -> str:
    """Put one file-system oddity into the config tree."""
    kind = rng.choice(FS_ODDITIES)
    target = config / rng.choice(["", *sorted(d.name for d in config.iterdir() if d.is_dir())])
    if kind == "dangling symlink":
        (target / "gone.yaml").symlink_to(target / "nowhere.yaml")
    elif kind == "symlink loop":
        (target / "a.yaml").symlink_to(target / "b.yaml")
        (target / "b.yaml").symlink_to(target / "a.yaml")
    elif kind == "dir loop":
        (target / "loop").symlink_to(config)
    elif kind == "non-utf8 name":
        (target / os.fsdecode(b"bad-\xff.yaml")).write_text("users: {}\n")
    elif kind == "fifo":
        os.mkfifo(target / "pipe.yaml")
    elif kind == "empty":
        (target / "empty.yaml").write_text("")
    elif kind == "dir named yaml":
        (target / "odd.yaml").mkdir()
    else:
        path = target / "secret.yaml"
        path.write_text("users: {}\n")
        path.chmod(0)
    return kind


# -- cases -------------------------------------------------------------------------


@dataclass
class Case:
    """One fuzz input: what was mutated and the CLI arguments to run."""

    number: int
    description: str
    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    oddity: str | None = None
    snapshot: bytes | None = None


def _config_files(config: Path = CONFIG) -> dict[str, str]:
    return {
        str(p.relative_to(config)): p.read_text(encoding="utf-8")
        for p in sorted([*config.rglob("*.yaml"), *config.rglob("*.csv")])
    }


def manifest_case(
    number: int,
    rng: random.Random,
    files: dict[str, str],
    plan: list[str] | None = None,
    snapshot: Path = SNAPSHOT,
) -> Case:
    """A mutated manifest set, validated (or, one in four, planned with
    `plan`'s extra arguments)."""
    name = rng.choice(sorted(files))
    roll = rng.random()
    mutated = {k: v.encode() for k, v in files.items()}
    oddity = None
    if name.endswith(".csv") and roll < 0.9:
        what, mutated[name] = mutate_csv(files[name], rng)
    elif roll < 0.45:
        data = YAML(typ="safe", pure=True).load(files[name])
        what, data = mutate_data(data, rng)
        mutated[name] = _dump_yaml(data).encode("utf-8", "surrogatepass")
    elif roll < 0.9:
        what, mutated[name] = mutate_text(files[name], rng)
    else:
        what, oddity = "file system", "pending"
    args = ["validate", "--config", "config", "--format", "json"]
    if rng.random() < 0.25:
        args = ["plan", "--config", "config", "--target", "emulator:snapshot.json", *(plan or [])]
    return Case(number, f"{name}: {what}", args, mutated, oddity, snapshot.read_bytes())


def snapshot_case(number: int, rng: random.Random, snapshot: Any) -> Case:
    """A mutated demo snapshot, planned against the shipped manifests."""
    if rng.random() < 0.6:
        what, data = mutate_data(snapshot, rng)
        try:
            raw = json.dumps(data).encode()
        except ValueError:
            raw = b"{}"
    else:
        what, raw = mutate_text(json.dumps(snapshot, indent=1), rng)
    files = {k: v.encode() for k, v in _config_files().items()}
    args = ["plan", "--config", "config", "--target", "emulator:snapshot.json"]
    return Case(number, f"snapshot: {what}", args, files, None, raw)


def cases(manifests: int, environments: int, snapshots: int, seed: int) -> Iterator[Case]:
    """The reproducible cases for a seed, one at a time: built all at once they
    hold about 1 GB, which every forked child would inherit against its limit."""
    rng = random.Random(seed)
    files = _config_files()
    for n in range(manifests):
        yield manifest_case(n, rng, files)
    layered = _config_files(ENVIRONMENTS / "config")
    for n in range(environments):
        yield manifest_case(
            manifests + n, rng, layered, ["--all-envs"], ENVIRONMENTS / "staging-snapshot.json"
        )
    snapshot = json.loads(SNAPSHOT.read_text())
    for n in range(snapshots):
        yield snapshot_case(manifests + environments + n, rng, snapshot)


# -- running one case in a child ---------------------------------------------------------


def _guard_sockets() -> None:
    """Let the child reach loopback only; anything else is reported and refused."""

    def refuse(what: str) -> None:
        os.write(2, f"\n{NETWORK_MARK} {what}\n".encode())
        raise OSError(101, "network blocked by bench.fuzz")

    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
            refuse(f"connect {address!r}")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in _LOOPBACK and host is not None:
            refuse(f"getaddrinfo {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def _child(case_dir: Path, args: list[str], write_end: int) -> None:
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    # RLIMIT_DATA counts what the heap really uses; RLIMIT_AS would also count
    # each thread's 64 MB malloc arena reservation and refuse new threads.
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_BYTES, MEMORY_BYTES))
    threading.stack_size(THREAD_STACK_BYTES)
    _guard_sockets()
    os.chdir(case_dir)
    code = 0
    try:
        from reconciler.cli import cli

        cli.main(args, prog_name="connect-reconciler", standalone_mode=True)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 70
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _write_case(case: Case, directory: Path) -> None:
    config = directory / "config"
    for name, content in case.files.items():
        path = config / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    if case.snapshot is not None:
        (directory / "snapshot.json").write_bytes(case.snapshot)


def run_case(case: Case, directory: Path, rng: random.Random) -> tuple[str, str]:
    """Run one case in a forked child; (outcome, output excerpt)."""
    _write_case(case, directory)
    if case.oddity:
        case.oddity = add_fs_oddity(directory / "config", rng)
        case.description += f" ({case.oddity})"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        _child(directory, case.args, write_end)
    os.close(write_end)
    output = bytearray()
    deadline = time.monotonic() + WALL_SECONDS
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.killpg(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([read_end], [], [], left)
        if ready:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            if len(output) < 1 << 20:
                output += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    text = output.decode("utf-8", "replace")
    if timed_out:
        return "crashed", f"no answer within {WALL_SECONDS:g} s"
    if os.WIFSIGNALED(status):
        return "crashed", f"killed by signal {os.WTERMSIG(status)}"
    if NETWORK_MARK in text:
        return "network", text[text.index(NETWORK_MARK) :][:300]
    if "Traceback (most recent call last)" in text or "error: unexpected" in text:
        return "traceback", text[-1500:]
    code = os.WEXITSTATUS(status)
    if code not in (0, 1, 2, 3):
        return "traceback", f"exit {code}: {text[-500:]}"
    unlocated = _unlocated(case.args, code, text)
    if unlocated:
        return "unlocated", unlocated
    last = text.strip().splitlines()[-1:] or [""]
    return "clean", f"exit {code}: {last[0][:120]}"


def _unlocated(args: list[str], code: int, text: str) -> str | None:
    """What is wrong with a `validate --format json` refusal's positions, if anything."""
    if args[:1] != ["validate"] or "json" not in args or code != 1:
        return None
    try:
        document, _ = json.JSONDecoder().raw_decode(text, text.index("{"))
        errors = document["errors"]
    except (ValueError, KeyError, TypeError):
        return f"no diagnostics document: {text[-300:]}"
    if not errors:
        return "exit 1 with no error listed"
    for error in errors:
        if not error.get("file") or error.get("line", 0) < 1 or error.get("column", 0) < 1:
            return f"error without a position: {error}"
    return None


def run(
    manifests: int, environments: int, snapshots: int, seed: int, verbose: bool = False
) -> Counter[str]:
    """Run the cases; print failures and the RESULT line; return the counts."""
    counts: Counter[str] = Counter()
    rng = random.Random(seed + 1)
    # The children must not find credentials or config that would send them
    # to a real endpoint.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ |= {"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    # Import once in the parent, so every forked child starts warm.
    import reconciler.cli  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        for case in cases(manifests, environments, snapshots, seed):
            directory = Path(tmp) / str(case.number)
            directory.mkdir()
            outcome, detail = run_case(case, directory, rng)
            counts["tried"] += 1
            counts[outcome] += 1
            if outcome != "clean" or verbose:
                print(f"case {case.number} [{outcome}] {case.description}: {detail}", flush=True)
            _remove(directory)
    print(
        f"RESULT fuzz tried={counts['tried']} clean={counts['clean']} "
        f"crashed={counts['crashed']} traceback={counts['traceback']} "
        f"network={counts['network']} unlocated={counts['unlocated']}",
        flush=True,
    )
    return counts


def _remove(directory: Path) -> None:
    # An unreadable file or directory must become removable again.
    for parent, names, files in os.walk(directory):
        for name in names + files:
            path = Path(parent) / name
            if not path.is_symlink():
                path.chmod(0o755)
    shutil.rmtree(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifests", type=int, default=2000)
    parser.add_argument("--environments", type=int, default=300)
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args()
    counts = run(args.manifests, args.environments, args.snapshots, args.seed, args.verbose)
    sys.exit(1 if counts["tried"] != counts["clean"] else 0)


if __name__ == "__main__":
    main()
