#!/usr/bin/env python3
"""Import graph of branchd's top-level modules, from the `crate::` paths in src/ (comments
and string literals left out). Prints each module's dependencies and every cycle (strongly
connected component of more than one module).

    python3 tools/import-graph.py            # summary
    python3 tools/import-graph.py --edges    # also every module -> module edge with a file:line
"""
import os, re, sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
CODE = re.compile(r'//[^\n]*|/\*.*?\*/|r#*"(?:.|\n)*?"#*|"(?:\\.|[^"\\])*"', re.S)


def module_of(rel):
    head = rel.split(os.sep)[0]
    return head[:-3] if head.endswith(".rs") else head


def modules():
    return {f[:-3] if f.endswith(".rs") else f for f in os.listdir(ROOT) if f.endswith(".rs") or os.path.isdir(os.path.join(ROOT, f))} - {"lib", "main"}


def graph():
    known = modules()
    edges = defaultdict(dict)
    for d, _, files in os.walk(ROOT):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, ROOT)
            src = open(path).read()
            # keep line numbers: blank out comments and strings
            code = CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), src)
            # the test module of a file is not part of its layering
            cut = code.find("#[cfg(test)]\nmod tests")
            if cut >= 0:
                code = code[:cut]
            me = module_of(rel)
            for m in re.finditer(r"\bcrate::(\w+)", code):
                dep = m.group(1)
                if dep != me and dep in known:
                    line = code.count("\n", 0, m.start()) + 1
                    edges[me].setdefault(dep, f"src/{rel}:{line}")
            # `use crate::{a, b::c}` groups
            for m in re.finditer(r"\bcrate::\{([^}]*)\}", code):
                for dep in re.findall(r"(?:^|,)\s*(\w+)", m.group(1)):
                    if dep != me and dep in known:
                        edges[me].setdefault(dep, f"src/{rel}")
    return edges


def sccs(nodes, edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    edges = graph()
    nodes = set(edges) | {d for ds in edges.values() for d in ds}
    for m in sorted(nodes):
        print(f"{m:12} -> {', '.join(sorted(edges.get(m, {}))) or '-'}")
    cycles = [c for c in sccs(nodes, edges) if len(c) > 1]
    print(f"\n{len(nodes)} modules, {sum(len(d) for d in edges.values())} edges, {len(cycles)} cycle(s)")
    for c in cycles:
        print(f"cycle of {len(c)}: {', '.join(c)}")
        if "--edges" in sys.argv:
            for a in c:
                for b, at in sorted(edges.get(a, {}).items()):
                    if b in c:
                        print(f"    {a} -> {b}  ({at})")


if __name__ == "__main__":
    main()
