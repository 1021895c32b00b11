"""Read the Dockerfile the way `docker build` does, for the Compose emulation tier.

`stages(path)` parses every stage (FROM … AS name) into the instructions the emulation needs:
WORKDIR, ENV, COPY, USER, CMD, HEALTHCHECK (EXPOSE, VOLUME and ARG are recorded; RUN lines are
recorded in order among the COPY lines). `assemble(stage, context, out)`
lays out the files the stage's COPY lines add, under `out` at their image paths, with Docker's
rules: a directory source copies its contents, a file source into a destination ending in `/`
keeps its name, relative destinations are relative to WORKDIR, and files excluded by
.dockerignore are not in the build context at all. Anything this reader does not understand
(ADD, COPY --from, wildcards, variables) is an error, never a silent guess.

Only one kind of RUN is executed: `pip install -r FILE`, with the suite's own virtualenv
standing in for the image's Python (`pip install --dry-run --no-index`): it fails when FILE was
not copied before the RUN line, or names a package the suite's Python does not have. Other RUN
lines act inside the base image, which is not here, and are only recorded.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


class DockerfileError(ValueError):
    pass


@dataclass
class Copy:
    sources: list[str]
    dest: str  # absolute, WORKDIR applied
    chmod: int | None = None


@dataclass
class Stage:
    base: str
    name: str | None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    user: str | None = None
    cmd: list[str] | None = None
    healthcheck: list[str] | None = None  # ["CMD", ...] or ["CMD-SHELL", "..."]
    ignored: list[str] = field(default_factory=list)  # RUN/EXPOSE/VOLUME/ARG lines
    # Each RUN line with its WORKDIR and the number of COPY lines before it.
    runs: list[tuple[int, str, str]] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    """Instructions with their continuation lines joined; comment lines dropped (Docker
    drops them inside continuations too)."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def _exec_form(rest: str) -> list[str]:
    """JSON (exec) form as is; shell form becomes ["/bin/sh", "-c", rest], as Docker does."""
    if rest.startswith("["):
        value = json.loads(rest)
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise DockerfileError(f"not a JSON array of strings: {rest}")
        return value
    return ["/bin/sh", "-c", rest]


def _no_variables(value: str, where: str) -> str:
    if "$" in value:
        raise DockerfileError(f"{where}: variables are not supported by this reader: {value}")
    return value


def _parse_env(rest: str) -> dict[str, str]:
    words = shlex.split(rest)
    if words and "=" not in words[0]:  # legacy `ENV NAME value with spaces`
        return {words[0]: _no_variables(" ".join(words[1:]), "ENV")}
    pairs = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep:
            raise DockerfileError(f"ENV: expected NAME=value, got {word!r}")
        pairs[name] = _no_variables(value, "ENV")
    return pairs


def _parse_copy(rest: str, workdir: str) -> Copy:
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    chmod = None
    while words and words[0].startswith("--"):
        flag, _, value = words.pop(0).partition("=")
        if flag != "--chmod":
            raise DockerfileError(f"COPY {flag} is not supported by this reader")
        chmod = int(value, 8)
    if len(words) < 2:
        raise DockerfileError(f"COPY needs a source and a destination: {rest}")
    *sources, dest = (_no_variables(w, "COPY") for w in words)
    for source in sources:
        if any(c in source for c in "*?["):
            raise DockerfileError(f"COPY wildcards are not supported by this reader: {source}")
    absolute = str(PurePosixPath(workdir, dest)) + ("/" if dest.endswith("/") else "")
    if len(sources) > 1 and not absolute.endswith("/"):
        raise DockerfileError(f"COPY with several sources needs a destination ending in /: {rest}")
    return Copy(sources, absolute, chmod)


def stages(path: Path) -> list[Stage]:
    result: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
            continue
        if not result:
            if keyword == "ARG":
                continue
            raise DockerfileError(f"{keyword} before FROM")
        stage = result[-1]
        if keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir, _no_variables(rest, "WORKDIR")))
        elif keyword == "ENV":
            stage.env.update(_parse_env(rest))
        elif keyword == "COPY":
            stage.copies.append(_parse_copy(rest, stage.workdir))
        elif keyword == "USER":
            stage.user = _no_variables(rest, "USER")
        elif keyword == "CMD":
            stage.cmd = _exec_form(rest)
        elif keyword == "HEALTHCHECK":
            found = re.search(r"\bCMD\b\s*(.*)$", rest)
            if rest.upper() == "NONE" or found is None:
                stage.healthcheck = None
            else:
                command = _exec_form(found[1])
                shell = command[:2] == ["/bin/sh", "-c"]
                stage.healthcheck = ["CMD-SHELL", command[2]] if shell else ["CMD", *command]
        elif keyword in {"RUN", "EXPOSE", "VOLUME", "ARG", "LABEL", "STOPSIGNAL"}:
            stage.ignored.append(line)
            if keyword == "RUN":
                stage.runs.append((len(stage.copies), stage.workdir, rest))
        else:
            raise DockerfileError(f"{keyword} is not supported by this reader")
    return result


def stage(path: Path, name: str | None = None) -> Stage:
    """The stage called `name`, or the last one (what a build without --target makes)."""
    found = stages(path)
    if name is None:
        return found[-1]
    for candidate in found:
        if candidate.name == name:
            return candidate
    raise DockerfileError(f"no stage named {name!r} in {path}")


# -- .dockerignore ---------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match plus `**` (any number of path segments), as Docker's matcher."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def ignore_rules(context: Path) -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, excludes) in file order; the last rule that matches a path decides."""
    ignore = context / ".dockerignore"
    rules = []
    if ignore.exists():
        for raw in ignore.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            cleaned = str(PurePosixPath(line.lstrip("!").strip())).lstrip("/")
            rules.append((_pattern_regex(cleaned), not negated))
    return rules


def is_ignored(relative: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Whether `relative` (a path in the context) is left out of the build context: a rule
    matching the path or any folder above it applies."""
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for regex, excludes in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = excludes
    return excluded


# -- assembling a stage's files ------------------------------------------------------------


def assemble(stage: Stage, context: Path, out: Path) -> list[str]:
    """Copy what `stage`'s COPY lines add into `out` (image path /x/y → out/x/y); return the
    image paths written. The base image's own files are not included."""
    rules = ignore_rules(context)
    written: list[str] = []
    if stage.workdir != "/":
        (out / stage.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for index, copy in enumerate(stage.copies):
        _run_before(stage, index, out)
        for source in copy.sources:
            relative = str(PurePosixPath(source)).lstrip("/")
            origin = context / relative
            if relative in ("", ".") or not origin.exists() or is_ignored(relative, rules):
                raise DockerfileError(f"COPY {source}: not in the build context")
            if origin.is_dir():
                files = [
                    p
                    for p in sorted(origin.rglob("*"))
                    if p.is_file() and not is_ignored(str(p.relative_to(context)), rules)
                ]
                targets = [(p, PurePosixPath(copy.dest, str(p.relative_to(origin)))) for p in files]
            elif copy.dest.endswith("/"):
                targets = [(origin, PurePosixPath(copy.dest, origin.name))]
            else:
                targets = [(origin, PurePosixPath(copy.dest))]
            for file, image_path in targets:
                target = out / str(image_path).lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target)
                if copy.chmod is not None:
                    target.chmod(copy.chmod)
                written.append(str(image_path))
    _run_before(stage, len(stage.copies), out)
    return written


def _run_before(stage: Stage, copies: int, out: Path) -> None:
    """Execute the stage's `pip install -r FILE` RUN lines that come after `copies` COPY lines
    (see the module's docstring); other RUN lines are not executed."""
    for position, workdir, command in stage.runs:
        if position != copies:
            continue
        words = shlex.split(command)
        if words[:2] != ["pip", "install"] or "-r" not in words:
            continue
        requirements = PurePosixPath(workdir, words[words.index("-r") + 1])
        found = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet"]
            + ["--disable-pip-version-check", "-r", str(out / str(requirements).lstrip("/"))],
            capture_output=True,
            text=True,
        )
        if found.returncode != 0:
            raise DockerfileError(f"RUN {command}: {found.stderr.strip()[-600:]}")
