#!/usr/bin/env python3
"""Checks every relative Markdown link in README.md, docs/*.md and bench/README.md.

A link [text](path#anchor) must name a file or folder that exists (relative to
the file holding the link) and, with an anchor into a Markdown file, a heading
of that file whose GitHub anchor is that anchor. Links in fenced code blocks
and inline code are not links. http(s) and mailto links are not checked (the
tests make no network traffic).

  check_doc_links.py [ROOT]       self-test, then check the repository at ROOT (default: ..)
  check_doc_links.py --self-test  prove the checker finds broken links

Exit 0 when every link resolves; 1 with one line per broken link otherwise.
Standard library only.
"""
import pathlib
import re
import sys
import tempfile

LINK = re.compile(r"(?<!\!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^()\s]+)\)")


def strip_code(text):
    """The text with fenced blocks and inline code spans blanked, line numbers kept."""
    out = []
    fence = None
    for line in text.split("\n"):
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = None
            out.append("")
            continue
        m = re.match(r"(`{3,}|~{3,})", stripped)
        if m:
            fence = m.group(1)
            out.append("")
            continue
        out.append(re.sub(r"(`+)[^`].*?\1", "", line))
    return out


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # link text only
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        fence = None
        for line in path.read_text(encoding="utf-8").split("\n"):
            stripped = line.lstrip()
            m = re.match(r"(`{3,}|~{3,})", stripped)
            if fence:
                if stripped.startswith(fence):
                    fence = None
                continue
            if m:
                fence = m.group(1)
                continue
            h = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not h:
                continue
            base = slug(h.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        for name in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text(encoding="utf-8")):
            found.add(name)
        cache[path] = found
    return cache[path]


def check_file(path, root):
    errors = []
    lines = strip_code(path.read_text(encoding="utf-8"))
    for number, line in enumerate(lines, 1):
        targets = [m.group(1) for m in LINK.finditer(line)] + [m.group(1) for m in IMAGE.finditer(line)]
        for target in targets:
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            where = f"{path.relative_to(root)}:{number}: link '{target}'"
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                errors.append(f"{where}: {file_part} does not exist")
                continue
            if anchor:
                if dest.is_dir() or dest.suffix.lower() != ".md":
                    errors.append(f"{where}: an anchor into {file_part}, which is not a Markdown file")
                elif anchor not in anchors(dest):
                    errors.append(f"{where}: {dest.relative_to(root) if dest.is_relative_to(root) else dest} "
                                  f"has no heading with anchor #{anchor}")
    return errors


def doc_files(root):
    files = [root / "README.md", root / "bench" / "README.md"]
    files += sorted((root / "docs").glob("*.md"))
    return [f for f in files if f.exists()]


def check(root):
    root = root.resolve()
    files = doc_files(root)
    errors = []
    for f in files:
        errors += check_file(f, root)
    return files, errors


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        (root / "docs").mkdir()
        (root / "README.md").write_text(
            "# Title\n\n## A `code` heading, twice\n\n## A `code` heading, twice\n\n"
            "[ok](docs/a.md) [ok](docs/a.md#first-part) [ok](#a-code-heading-twice-1) [ok](docs/)\n"
            "[web](https://example.invalid/x) `[not a link](nowhere.md)`\n"
            "```\n[not a link](nowhere.md)\n```\n"
            "[bad file](docs/missing.md) [bad anchor](docs/a.md#no-such) [bad self](#nope)\n",
            encoding="utf-8")
        (root / "docs" / "a.md").write_text("# A\n\n## First part\n\n[back](../README.md#title)\n",
                                            encoding="utf-8")
        _, errors = check(root)
        expected = ["docs/missing.md does not exist", "has no heading with anchor #no-such",
                    "has no heading with anchor #nope"]
        ok = len(errors) == 3 and all(any(e in err for err in errors) for e in expected)
        if not ok:
            print("self-test FAILED; got:\n  " + "\n  ".join(errors) if errors else "self-test FAILED: nothing found")
            return 1
    print("self-test passed: 3 broken links found, 6 good ones accepted, code ignored")
    return 0


def main(argv):
    if argv[1:2] == ["--self-test"]:
        return self_test()
    root = pathlib.Path(argv[1]) if len(argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    if self_test() != 0:  # a checker that finds nothing proves nothing
        return 1
    files, errors = check(root)
    for e in errors:
        print(e)
    print(f"docs links: {len(files)} file(s) checked, {len(errors)} broken link(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
