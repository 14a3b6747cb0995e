"""The file tools, run INSIDE the sandbox (never on the host): view, search, replace, create, export.

Standard library only and Python >= 3.6, so that it runs with whatever interpreter a sandbox has
(the host's under bwrap, an image's under docker). It reads one JSON request on stdin,

    {"tool": "replace", "args": {"path": "pkg/mod.py", "old": "a < b", "new": "a <= b"}}

writes the observation on stdout and exits 0, or writes an error message and exits 2. Running
inside the sandbox matters: a path the model chose (a symlink to /etc/shadow, say) resolves in the
sandbox's filesystem, where the host's files do not exist. The semantics follow SWE-agent's and
OpenHands' str_replace_editor: `replace` needs exactly one verbatim occurrence, `create` never
overwrites.
"""

import json
import os
import re
import sys

SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", ".mypy_cache", "node_modules", ".venv"}
SNIPPET_CONTEXT = 4
MAX_MATCHES = 50


class ToolError(Exception):
    pass


def _numbered(lines, first):
    return "\n".join("%6d\t%s" % (first + i, line) for i, line in enumerate(lines))


def _read(path):
    if not os.path.exists(path):
        raise ToolError("%s does not exist" % path)
    if os.path.isdir(path):
        raise ToolError("%s is a directory" % path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError("%s is not a UTF-8 text file" % path)


def view(path, start_line=None, end_line=None):
    if os.path.isdir(path):
        out = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            rel = os.path.relpath(root, path)
            if rel != "." and rel.count(os.sep) >= 1:  # list two levels below `path`, no deeper
                dirs[:] = []
                continue
            for name in dirs + sorted(f for f in files if not f.startswith(".")):
                full = os.path.join(root, name)
                out.append(os.path.normpath(full) + ("/" if os.path.isdir(full) else ""))
        return "Files and directories in %s (2 levels):\n%s" % (path, "\n".join(sorted(out)))
    lines = _read(path).splitlines()
    if start_line is None and end_line is None:
        return _numbered(lines, 1) if lines else "(%s is empty)" % path
    start = 1 if start_line is None else int(start_line)
    end = len(lines) if end_line in (None, -1) else int(end_line)
    if not 1 <= start <= max(len(lines), 1) or end < start:
        raise ToolError("invalid line range [%s, %s]: %s has %d lines" % (start_line, end_line, path, len(lines)))
    return _numbered(lines[start - 1 : end], start)


def search(pattern, path="."):
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ToolError("invalid regular expression %r: %s" % (pattern, e))
    if not os.path.exists(path):
        raise ToolError("%s does not exist" % path)
    files = [path] if os.path.isfile(path) else []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        files.extend(os.path.join(root, n) for n in sorted(names))
    matches, total = [], 0
    for name in files:
        try:
            with open(name, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if regex.search(line):
                        total += 1
                        if len(matches) < MAX_MATCHES:
                            matches.append("%s:%d: %s" % (os.path.normpath(name), number, line.rstrip("\n")[:200]))
        except (UnicodeDecodeError, OSError):
            continue
    if not matches:
        return "No matches for %r in %s" % (pattern, path)
    more = "\n(%d more matches not shown)" % (total - len(matches)) if total > len(matches) else ""
    return "\n".join(matches) + more


def replace(path, old, new):
    if old == "":
        raise ToolError("old must not be empty (use create for new files)")
    text = _read(path)
    count = text.count(old)
    if count == 0:
        raise ToolError("No replacement was performed: old did not appear verbatim in %s" % path)
    if count > 1:
        starts, i = [], text.find(old)
        while i != -1:
            starts.append(text.count("\n", 0, i) + 1)
            i = text.find(old, i + 1)
        raise ToolError("No replacement was performed: old occurs %d times in %s (lines %s); include more context to "
                        "make it unique" % (count, path, ", ".join(map(str, starts))))
    start = text.count("\n", 0, text.find(old)) + 1
    text = text.replace(old, new, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    lines = text.splitlines()
    first = max(1, start - SNIPPET_CONTEXT)
    last = min(len(lines), start + new.count("\n") + SNIPPET_CONTEXT)
    return "Edited %s. The result around the edit:\n%s" % (path, _numbered(lines[first - 1 : last], first))


def create(path, content):
    if os.path.lexists(path):
        raise ToolError("%s already exists; create never overwrites (use replace to edit it)" % path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    return "Created %s (%d lines)" % (path, content.count("\n") + (0 if content.endswith("\n") or not content else 1))


def export(prefixes, max_bytes=1 << 20):
    """The regular files (never symlinks) under `prefixes`, as JSON {path: text}: what the grader
    copies into a fresh workspace."""
    files, skipped, total = {}, [], 0
    for prefix in prefixes:
        if os.path.islink(prefix) or not os.path.exists(prefix):
            continue
        walk = [(os.path.dirname(prefix), [], [os.path.basename(prefix)])] if os.path.isfile(prefix) else os.walk(prefix)
        for root, dirs, names in walk:
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not os.path.islink(os.path.join(root, d)))
            for n in sorted(names):
                full = os.path.normpath(os.path.join(root, n))
                if os.path.islink(full) or not os.path.isfile(full):
                    skipped.append(full)
                    continue
                size = os.path.getsize(full)
                if total + size > max_bytes:
                    skipped.append(full)
                    continue
                try:
                    with open(full, encoding="utf-8") as f:
                        files[full] = f.read()
                    total += size
                except (UnicodeDecodeError, OSError):
                    skipped.append(full)
    return json.dumps({"files": files, "skipped": skipped})


TOOLS = {"view": view, "search": search, "replace": replace, "create": create, "export": export}


def main():
    try:
        request = json.loads(sys.stdin.read())
        tool, args = request["tool"], request.get("args", {})
        if tool not in TOOLS:
            raise ToolError("unknown tool %r" % tool)
        sys.stdout.write(TOOLS[tool](**args))
        return 0
    except ToolError as e:
        sys.stdout.write("Error: %s" % e)
        return 2
    except TypeError as e:
        sys.stdout.write("Error: bad arguments: %s" % e)
        return 2
    except OSError as e:
        sys.stdout.write("Error: %s" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
