#!/usr/bin/env python3
"""Generates docs/api.md, the API reference, from the public headers (include/nnkit).

Every declaration that has a comment right above it (or on its line) is listed, grouped by
header and by the class it belongs to, with the header's opening comment as its summary. The
headers are the source of truth: document an API by commenting it there, then run

    python3 scripts/gen_api_docs.py          # rewrite docs/api.md
    python3 scripts/gen_api_docs.py --check  # exit 1 if docs/api.md is out of date (a test)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = os.path.join(ROOT, "include")
OUT = os.path.join(ROOT, "docs", "api.md")

SKIP_LINE = re.compile(r"^\s*(#|}|namespace\b|private:|protected:|public:|template\s*<|using namespace|$)")
CLASS = re.compile(r"^\s*(?:class|struct)\s+(?:\[\[\w+\]\]\s+)?(\w+)[^;]*\{?\s*$")


def declaration(lines, i):
    """The declaration starting at line i, joined up to its ';' or '{' (at most 4 lines)."""
    text = []
    for j in range(i, min(i + 4, len(lines))):
        line = lines[j].strip()
        text.append(line)
        if ";" in line or "{" in line.replace("{}", ""):
            break
    decl = " ".join(text).replace("{}", "\0")  # keep default arguments like `= {}`
    decl = re.sub(r"\s*\{.*$", "", decl)  # drop inline bodies
    decl = decl.replace("\0", "{}")
    decl = re.sub(r"\s*//.*$", "", decl)
    return decl.rstrip(";").strip()


def header_doc(path):
    with open(path) as f:
        lines = f.read().splitlines()
    summary, entries, comment, class_stack, depth = [], [], [], [], 0
    started = False
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not started:
            if line.startswith("#pragma"):
                continue
            if line.startswith("//"):
                summary.append(line[2:].strip())
                continue
            started = True
        if line.startswith("//"):
            comment.append(line[2:].strip())
            continue
        m = CLASS.match(raw)
        opens, closes = raw.count("{"), raw.count("}")
        if comment and not SKIP_LINE.match(raw):
            owner = class_stack[-1][0] if class_stack else ""
            entries.append((owner, declaration(lines, i), " ".join(comment)))
        elif not comment and "//" in raw and not SKIP_LINE.match(raw) and class_stack:
            decl, note = raw.split("//", 1)
            entries.append((class_stack[-1][0], decl.strip().rstrip(";").strip(), note.strip()))
        comment = []
        if m and opens > closes:
            class_stack.append((m.group(1), depth))
        depth += opens - closes
        while class_stack and depth <= class_stack[-1][1]:
            class_stack.pop()
    return " ".join(summary), entries


def generate():
    out = ["# API reference", "",
           "Generated from the comments in `include/nnkit/` by `scripts/gen_api_docs.py` (a test checks",
           "that this file is up to date). Start with [getting started](getting-started.md); the",
           "headers themselves are the complete reference.", ""]
    headers = []
    for d, _, files in os.walk(os.path.join(INCLUDE, "nnkit")):
        for f in files:
            if f.endswith(".h"):
                headers.append(os.path.relpath(os.path.join(d, f), INCLUDE))
    for h in sorted(headers):
        summary, entries = header_doc(os.path.join(INCLUDE, h))
        out.append(f"## `<{h}>`")
        out.append("")
        if summary:
            out.append(summary)
            out.append("")
        owner = None
        for cls, decl, doc in entries:
            if cls != owner:
                if cls:
                    if out[-1] != "":
                        out.append("")
                    out.append(f"**`{cls}`**")
                    out.append("")
                owner = cls
            out.append(f"- `{decl}` — {doc}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    text = generate()
    if "--check" in sys.argv:
        with open(OUT) as f:
            if f.read() != text:
                print("docs/api.md is out of date: run python3 scripts/gen_api_docs.py")
                sys.exit(1)
        print("docs/api.md is up to date")
        sys.exit(0)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}")
