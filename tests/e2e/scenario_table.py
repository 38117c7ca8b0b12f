"""Print the figures of a `make scenarios` run (a JSON-lines file) as a Markdown table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = (
    "scenario",
    "messages",
    "settle s",
    "stuck",
    "push sent",
    "push lost",
    "push dup",
    "SMS sent",
    "SMS lost",
    "SMS dup",
)


def table(lines: list[dict[str, object]]) -> str:
    rows = [
        (
            f["scenario"],
            f["messages"],
            f["settle_seconds"],
            f["stuck"],
            f["pushes"],
            f["push_lost"],
            f["push_duplicates"],
            f["sms"],
            f["sms_lost"],
            f["sms_duplicates"],
        )
        for f in lines
    ]
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def main(path: str) -> None:
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    print(table(lines))


if __name__ == "__main__":
    main(sys.argv[1])
