"""A flow-graph picture as Graphviz drew it (SVG), read back into what an investigator sees: the title lines, the
address boxes (folded ones apart) with their text and border, the edges with their labels and style, and the legend
entries. Tests check the picture's structure with it, not only that a file exists."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class Box:
    """A node as drawn: its DOT name (`n3`, `legend_root`), its lines of text, and its border."""

    name: str
    lines: tuple[str, ...]
    stroke: str
    stroke_width: float
    dashed: bool

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Arrow:
    """An edge as drawn: from and to (DOT names), its label lines, its colour and whether it is dashed."""

    tail: str
    head: str
    lines: tuple[str, ...]
    stroke: str
    dashed: bool

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class SvgPicture:
    def __init__(self, svg: bytes) -> None:
        root = ET.fromstring(svg)
        graph = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "graph")
        self.title = tuple(t.text or "" for t in graph.findall(f"{SVG}text"))
        self.boxes: dict[str, Box] = {}
        self.arrows: list[Arrow] = []
        self.clusters: dict[str, tuple[str, ...]] = {}
        for g in graph.findall(f"{SVG}g"):
            kind, name = g.get("class"), g.findtext(f"{SVG}title") or ""
            lines = tuple(t.text or "" for t in g.iter(f"{SVG}text"))
            shape = g.find(f"{SVG}path")
            if shape is None:
                shape = g.find(f"{SVG}polygon")
            stroke = "" if shape is None else shape.get("stroke", "")
            dashed = shape is not None and shape.get("stroke-dasharray") is not None
            if kind == "node":
                width = float(shape.get("stroke-width", "1")) if shape is not None else 0.0
                self.boxes[name] = Box(name, lines, stroke, width, dashed)
            elif kind == "edge":
                tail, head = name.split("->")
                self.arrows.append(Arrow(tail, head, lines, stroke, dashed))
            elif kind == "cluster":
                self.clusters[name] = lines

    @property
    def addresses(self) -> dict[str, Box]:
        """The boxes of the flows (addresses and folded nodes), not the legend's."""
        return {name: box for name, box in self.boxes.items() if not name.startswith("legend_")}

    @property
    def folded(self) -> dict[str, Box]:
        return {name: box for name, box in self.addresses.items() if box.lines[0].endswith("(folded)")}

    @property
    def legend(self) -> tuple[str, ...]:
        """The legend's entries, top to bottom as drawn."""
        return tuple(box.text for name, box in self.boxes.items() if name.startswith("legend_"))

    def box_with(self, words: str) -> Box:
        """The one address box whose text holds `words`."""
        (found,) = [box for box in self.addresses.values() if words in box.text]
        return found

    def arrow(self, tail: Box, head: Box) -> Arrow:
        (found,) = [a for a in self.arrows if (a.tail, a.head) == (tail.name, head.name)]
        return found
