"""LaTeX export of ``bench report`` tables: booktabs rules, best in bold, ↑/↓ in the header, ± where an
interval exists, the tie mark, and a caption that names the protocol.

Each table is a ``table`` float that compiles with ``\\usepackage{booktabs}`` (and ``[utf8]{inputenc}``
under pdfLaTeX for accented class names); every character the tables use beyond ASCII is written as a
LaTeX command (``±`` → ``$\\pm$``, ``Δ`` → ``$\\Delta$``, ...). Names of classes, runs and datasets are
escaped with :func:`latex_escape`.

Hand-written on purpose: pandas' ``Styler.to_latex`` escapes cells but leaves ``±``/``↑``/``Δ`` as
Unicode, which pdfLaTeX rejects, and cannot mark a cell bold and tied at once.
"""

from __future__ import annotations

import re
from typing import Any

# the ten characters TeX treats specially, then the Unicode our tables print
_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_UNICODE = {
    "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "Δ": r"$\Delta$", "−": r"$-$", "–": "--", "∞": r"$\infty$",
    "—": "---", "×": r"$\times$", "·": r"$\cdot$", "∈": r"$\in$", "†": r"$^\dagger$", "≈": r"$^{\approx}$",
    "…": r"\ldots{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", "→": r"$\to$",
}
_PATTERN = re.compile("|".join(re.escape(k) for k in (*_SPECIAL, *_UNICODE)))


def latex_escape(text: Any) -> str:
    """``text`` as LaTeX source that prints it: the ten special characters (``\\ & % $ # _ { } ~ ^``) and
    ``< > |`` escaped, the Unicode symbols of our tables written as commands; other characters kept."""
    return _PATTERN.sub(lambda m: _SPECIAL.get(m.group(0)) or _UNICODE[m.group(0)], str(text))


def _cell(cell: dict[str, Any]) -> str:
    text = latex_escape(cell.get("text", ""))
    if cell.get("best"):
        text = r"\textbf{" + text + "}"
    if cell.get("tie"):
        text += r"$^{\approx}$"
    if cell.get("untested"):
        text += r"$^{*}$"
    if cell.get("worst"):
        text = r"\underline{" + text + "}"
    return text


def table_latex(t: Any, *, label: str | None = None) -> str:
    """One :class:`reports.render.Table` as a ``table`` float (booktabs).

    Args:
        t: the table (its ``title``, ``columns``, ``rows``, ``notes`` and ``protocol``).
        label: the ``\\label`` key (default ``tab:<slug>``).

    Returns:
        LaTeX source ending in a newline. Separator rows (the papers' reported rows) become ``\\midrule``
        with the separator's text spanning the row.
    """
    ncol = len(t.columns)
    head = " & ".join(["", *(latex_escape(f"{c['label']} {c['arrow']}".strip()) for c in t.columns)])
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{l" + "r" * ncol + "}",
             r"\toprule", head + r" \\", r"\midrule"]
    for r in t.rows:
        if r.get("kind") == "separator":
            lines += [r"\midrule", r"\multicolumn{" + str(ncol + 1) + r"}{l}{\emph{" + latex_escape(r["label"]) + r"}} \\"]
            continue
        if r.get("ceiling"):
            lines.append(r"\midrule")
        cells = [_cell(c) for c in r["cells"]] + [""] * (ncol - len(r["cells"]))
        lines.append(" & ".join([latex_escape(r["label"]), *cells]) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    caption = t.title + (". " + t.protocol if getattr(t, "protocol", "") else "")
    notes = " ".join(getattr(t, "notes", []) or [])
    lines.append(r"\caption{" + latex_escape(caption.rstrip(".") + ".") + (" " + latex_escape(notes) if notes else "")
                 + "}")
    lines.append(r"\label{" + (label or f"tab:{getattr(t, 'slug', 'table')}") + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def document(tables: list[str]) -> str:
    """A standalone document around table floats (what the compile test builds)."""
    return "\n".join([r"\documentclass{article}", r"\usepackage[utf8]{inputenc}", r"\usepackage[T1]{fontenc}",
                      r"\usepackage{booktabs}", r"\begin{document}", *tables, r"\end{document}", ""])


__all__ = ["document", "latex_escape", "table_latex"]
