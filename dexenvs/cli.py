"""The contract every command keeps (`python -m agents.train ...`, `python -m generators.flywheel ...`):

- its arguments are checked before any work starts: a bad value exits with status 2 and one line that names the
  option, the value and what is allowed, and nothing is written;
- an expected failure (`DexError`: a missing file, a dataset of the wrong layout, an unknown object, a held-out
  scenario in a training set, an empty dataset) prints one line with a hint and exits with status 1; `--debug` (or
  `DEXSUITE_DEBUG=1`) shows its traceback; an unexpected exception shows its own;
- an existing output is refused unless `--overwrite` (or the command's resume) says otherwise.

An option declares its range where it is declared, `steps: Annotated[int, AtLeast(1)] = 6000` (or one of the aliases
below: `Count`, `NonNegative`, `Positive`, `Fraction`, `ExistingPath`, `NewPath`), and a config states what spans
fields in a `check()` method. `validate` walks a config with its nested configs, so one call checks all of a command's
options; library functions call it on the configs they are handed, so the API refuses what the CLI refuses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import sys
import typing
from pathlib import Path
from typing import Annotated, Any, Callable

DEBUG_ENV = "DEXSUITE_DEBUG"


class DexError(Exception):
    """An expected failure, told to the user in one line: what went wrong and, as `hint`, what to do about it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def line(self) -> str:
        return str(self) + (f" ({self.hint})" if self.hint else "")


class UsageError(DexError, ValueError):
    """A bad argument: the option, the value given and what is allowed (the CLI exits 2)."""

    def __init__(self, option: str, value: Any, allowed: str):
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(f"{self.flag} {show(value)}: {allowed}")

    @property
    def flag(self) -> str:
        return self.option if self.option.isupper() else "--" + self.option.replace("_", "-")

    def within(self, prefix: str) -> "UsageError":
        """The same error for a config nested at `prefix` (`base.`): options as the nested CLI spells them."""
        return UsageError(self.option if self.option.isupper() else prefix + self.option, self.value, self.allowed)


def show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(show, value)) if value else "(empty)"
    return str(value)


# ---- declared ranges -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Range:
    """lo <= value <= hi (`open_lo`: lo < value); a list or tuple is checked item by item; None passes (it means the
    default)."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False

    def allowed(self) -> str:
        if self.hi is None:
            return f"must be {'>' if self.open_lo else '>='} {self.lo:g}"
        if self.lo is None:
            return f"must be <= {self.hi:g}"
        return f"must be in {'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}]"

    def ok(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return True  # not a number: the parser's type check already spoke
        if v != v:  # NaN
            return False
        if self.lo is not None and (v <= self.lo if self.open_lo else v < self.lo):
            return False
        return self.hi is None or v <= self.hi

    def check(self, option: str, value: Any, cfg: Any) -> None:
        items = value if isinstance(value, (list, tuple)) else [value]
        if not all(self.ok(v) for v in items if v is not None):
            raise UsageError(option, value, self.allowed())


def AtLeast(lo: float) -> Range:  # noqa: N802  (reads as a type)
    return Range(lo)


def Above(lo: float) -> Range:  # noqa: N802
    return Range(lo, open_lo=True)


@dataclasses.dataclass(frozen=True)
class Exists:
    """A path that must exist."""

    def check(self, option: str, value: Any, cfg: Any) -> None:
        for p in value if isinstance(value, (list, tuple)) else [value]:
            if p is not None and not Path(p).exists():
                raise UsageError(option, p, "no such file or directory")


@dataclasses.dataclass(frozen=True)
class Fresh:
    """An output that must not exist yet, unless the config's `overwrite` (or `resume`) is set."""

    def check(self, option: str, value: Any, cfg: Any) -> None:
        if value is not None:
            check_output(option, Path(value), cfg)


Count = Annotated[int, AtLeast(1)]
NonNegative = Annotated[int, AtLeast(0)]
Positive = Annotated[float, Above(0)]
Fraction = Annotated[float, Range(0, 1)]
ExistingPath = Annotated[Path, Exists()]
NewPath = Annotated[Path, Fresh()]

MARKERS = (Range, Exists, Fresh)


def check_output(option: str, path: Path, cfg: Any = None, **flags: bool) -> None:
    """Refuses an existing `path` unless `cfg` (or `flags`) says `overwrite` or `resume`."""
    flags = {f: bool(getattr(cfg, f)) for f in ("resume", "overwrite") if hasattr(cfg, f)} | flags
    if not Path(path).exists() or any(flags.values()):
        return
    how = [f"--{f} to {'continue' if f == 'resume' else 'replace'} it" for f in flags]
    raise UsageError(option, path, "exists; " + (f"pass {' or '.join(how)}, or " if how else "") + "choose another")


def markers(hint: Any) -> list:
    """The range markers of a field's annotation, also inside Optional and on a tuple's items."""
    found = []
    if typing.get_origin(hint) is Annotated:
        found += [m for m in hint.__metadata__ if isinstance(m, MARKERS)]
        hint = typing.get_args(hint)[0]
    for a in typing.get_args(hint):
        found += markers(a)
    return found


def is_positional(hint: Any) -> bool:
    return "Positional" in repr(hint)


def option_name(f: dataclasses.Field, hint: Any) -> str:
    return f.name.upper() if is_positional(hint) else f.name


def validate(cfg: Any, prefix: str = "") -> Any:
    """Checks every declared range of `cfg` and its nested configs, then each config's `check()`; raises
    `UsageError` naming the option as the CLI spells it. Returns `cfg`."""
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, f"{prefix}{f.name}.")
            continue
        for m in markers(hints[f.name]):
            try:
                m.check(option_name(f, hints[f.name]), value, cfg)
            except UsageError as e:
                raise e.within(prefix) from None
    check = getattr(cfg, "check", None)
    if callable(check):
        try:
            check()
        except UsageError as e:
            raise e.within(prefix) from None
    return cfg


def options(cls: type, prefix: str = "") -> list[tuple[str, str]]:
    """Every option of a command's config as (name, kind): `checked` (a declared range or path check), `choice` (a
    fixed set of values or a flag, which the parser checks), or `free` (a string or number with no bound)."""
    out = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        base = typing.get_args(t)[0] if typing.get_origin(t) is Annotated else t
        if dataclasses.is_dataclass(base):
            out += options(base, f"{prefix}{f.name}.")
            continue
        text = repr(base)
        kind = ("checked" if markers(t) else
                "choice" if base is bool or "Literal" in text or text in ("bool | None",) else "free")
        out.append((prefix + f.name, kind))
    return out


# ---- running a command -----------------------------------------------------------------------------------------

_BOX = re.compile(r"[╭╮╰╯│─┬┴├┤]+|-{3,}")  # the frame tyro draws, in unicode or ascii


def _parse(args_type: type, argv: list[str], prog: str, description: str | None) -> Any:
    """tyro's parse, with its boxed error condensed to one line (help still prints in full)."""
    import tyro

    err = io.StringIO()  # tyro prints help to stdout, errors to stderr
    try:
        with contextlib.redirect_stderr(err):
            return tyro.cli(args_type, args=argv, prog=prog, description=description)
    except SystemExit as e:
        if not e.code:
            raise
        rows = [_BOX.sub(" ", ln).strip() for ln in err.getvalue().splitlines()]
        rows = [r for r in rows if not r.startswith("usage:")]
        first = next((i for i, r in enumerate(rows) if r), None)
        msg = []
        for r in rows[first + 1:] if first is not None else []:
            if not r:  # a box rule ends the message (what follows is the option's help)
                if msg:
                    break
                continue
            msg.append(r)
        text = " ".join(msg) or (rows[first] if first is not None else "bad arguments")
        print(f"{prog}: error: {text} (see --help)", file=sys.stderr)
        raise SystemExit(2) from None


def run_cli(main: Callable[[Any], Any], args_type: type, argv: list[str] | None = None, prog: str | None = None,
            description: str | None = None) -> Any:
    """Parses `argv` into `args_type`, validates it, and runs `main(args)` under the contract above."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or _prog()
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    args = _parse(args_type, argv, prog, description)
    try:
        validate(args)
        return main(args)
    except UsageError as e:
        if debug:
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except DexError as e:
        if debug:
            raise
        print(f"{prog}: {e.line()}" + ("" if e.hint else " (--debug for the traceback)"), file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted; the same command resumes where a command can", file=sys.stderr)
        raise SystemExit(130) from None


def _prog() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None) or Path(sys.argv[0]).stem
    return name[: -len(".__main__")] if name.endswith(".__main__") else name
