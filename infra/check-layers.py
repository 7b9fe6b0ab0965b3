#!/usr/bin/env python3
"""Fails when the top-level modules of src/ use each other in a cycle.

Reads every src/**/*.rs (but the crate roots src/lib.rs and src/main.rs), finds which other
top-level module each top-level module uses (`crate::x…` paths anywhere in the code and
`use crate::{x, y::…}` groups; `super::` never leaves a top-level module), and checks that the
graph of top-level modules has no cycle. Prints the edges and
`layers: no cycle among N top-level modules`, or each cycle with the file:line of every use
that makes it, and exits 1.

    python3 infra/check-layers.py [SRC_DIR]
"""
import os
import re
import sys
from collections import defaultdict, deque

ROOTS = {"lib.rs", "main.rs"}


def strip(text):
    """The source with comments, string and char literals blanked out (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 260]) and not (
            i and (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def group_heads(code, start):
    """The first name of each item of the `{…}` group opening at code[start]; with its offset."""
    heads, depth, i, expect = [], 0, start, True
    while i < len(code):
        c = code[i]
        if c == "{":
            depth += 1
            expect = depth == 1
            i += 1
        elif c == "}":
            depth -= 1
            i += 1
            if depth == 0:
                break
        elif c == "," and depth == 1:
            expect = True
            i += 1
        elif c.isspace():
            i += 1
        else:
            m = re.compile(IDENT).match(code, i)
            if m and expect and depth == 1:
                heads.append((m.group(0), i))
            expect = False
            i = m.end() if m else i + 1
    return heads


def uses(path, code):
    """(top-level module named, offset) for every `crate::` path in the stripped code."""
    found = []
    for m in re.finditer(r"(?<![A-Za-z0-9_$])crate\s*::\s*", code):
        rest = m.end()
        if code.startswith("{", rest):
            found.extend(group_heads(code, rest))
        else:
            name = re.compile(IDENT).match(code, rest)
            if name:
                found.append((name.group(0), rest))
    return found


def top_level(src, rel):
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    src = os.path.normpath(src)
    files = []
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, name), src)
                if rel not in ROOTS:
                    files.append(rel)
    files.sort()
    modules = sorted({top_level(src, rel) for rel in files})
    # edges[a][b] = ["src/x.rs:12", …]: the uses by which module a uses module b.
    edges = defaultdict(lambda: defaultdict(list))
    for rel in files:
        here = top_level(src, rel)
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            code = strip(f.read())
        for name, offset in uses(rel, code):
            if name in modules and name != here:
                line = code.count("\n", 0, offset) + 1
                edges[here][name].append(f"{os.path.join(os.path.basename(src), rel)}:{line}")

    print("top-level module graph (a -> b: a uses b):")
    for a in modules:
        for b in sorted(edges[a]):
            print(f"  {a} -> {b}  ({len(edges[a][b])} uses)")

    cycles = find_cycles(modules, edges)
    if not cycles:
        print(f"layers: no cycle among {len(modules)} top-level modules")
        return 0
    print(f"\nlayers: {len(cycles)} cycle(s) among the top-level modules:")
    for cycle in cycles:
        print("\n  " + " -> ".join(cycle + [cycle[0]]))
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            print(f"    {a} -> {b}:")
            for where in edges[a][b]:
                print(f"      {where}")
    return 1


def find_cycles(modules, edges):
    """One shortest cycle through each edge that lies on a cycle, without repeats."""
    def path(start, goal):
        prev, queue = {start: None}, deque([start])
        while queue:
            u = queue.popleft()
            if u == goal:
                out = []
                while u is not None:
                    out.append(u)
                    u = prev[u]
                return out[::-1]
            for v in sorted(edges[u]):
                if v not in prev:
                    prev[v] = u
                    queue.append(v)
        return None

    seen, cycles = set(), []
    for a in modules:
        for b in sorted(edges[a]):
            back = path(b, a)
            if back is None:
                continue
            cycle = [a] + back[:-1]
            k = cycle.index(min(cycle))
            key = tuple(cycle[k:] + cycle[:k])
            if key not in seen:
                seen.add(key)
                cycles.append(list(key))
    return cycles


if __name__ == "__main__":
    sys.exit(main())
