"""The Terraform configurations of the kit, read with python-hcl2 (no terraform binary, no providers).

`load(directory)` parses every `*.tf` file of one configuration into a `Config`: resources and data
sources keyed by (type, name), variables, outputs, locals, module calls, `terraform` blocks, plus the
raw text (comments stripped) for reference checks. `resolve` follows `var.X` to its default and
`local.X` to its value, so the tests can state numbers ("interval 30") instead of expressions.

Run as a script it prints the inputs/outputs tables of the module README (terraform-docs style);
`--write` rewrites them in terraform/README.md between the BEGIN_TF_DOCS / END_TF_DOCS markers.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

TERRAFORM = Path(__file__).resolve().parent.parent
MODULE = TERRAFORM / "modules" / "postgres-mcp"
EXAMPLE = TERRAFORM / "examples" / "complete"
README = TERRAFORM / "README.md"
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"

# Plain Python values: strings without their quotes, blocks as lists of dicts, no comment keys.
OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)

_REFERENCE = re.compile(r"\$\{(var|local)\.([A-Za-z0-9_]+)\}")


@dataclass
class Config:
    path: Path
    resources: dict = field(default_factory=dict)  # (type, name) -> body
    data: dict = field(default_factory=dict)  # (type, name) -> body
    variables: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    locals: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    terraform: list = field(default_factory=list)
    providers: list = field(default_factory=list)
    text: str = ""  # every file, comments removed

    def resource(self, kind: str, name: str) -> dict:
        assert (kind, name) in self.resources, f"{self.path.name}: no resource {kind}.{name}"
        return self.resources[(kind, name)]

    def of_type(self, kind: str) -> dict:
        return {name: body for (k, name), body in self.resources.items() if k == kind}

    def default(self, variable: str):
        assert variable in self.variables, f"{self.path.name}: no variable {variable}"
        assert "default" in self.variables[variable], f"variable {variable} has no default"
        return self.variables[variable]["default"]


def _string_end(text: str, i: int) -> int:
    """Index just past the string literal opening at text[i], across `${ ... }` holding strings."""
    n, j = len(text), i + 1
    while j < n and text[j] != '"':
        if text[j] == "\\":
            j += 2
        elif text.startswith("${", j):
            depth, j = 1, j + 2
            while j < n and depth:
                if text[j] == '"':
                    j = _string_end(text, j)
                    continue
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
        else:
            j += 1
    return j + 1


def strip_comments(text: str) -> str:
    """HCL without `#`, `//` and `/* */` comments; string literals (which may hold `#`) are kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = _string_end(text, i)
            out.append(text[i:j])
            i = j
        elif c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@functools.lru_cache(maxsize=None)
def _parse(text: str) -> dict:
    # Parsing is the slow part (lark); broken copies differ from the kit in one file only.
    return hcl2.loads(text, serialization_options=OPTIONS)


def load(directory: Path) -> Config:
    config = Config(path=directory)
    files = sorted(directory.glob("*.tf"))
    assert files, f"no .tf files in {directory}"
    texts = []
    for path in files:
        text = path.read_text()
        texts.append(strip_comments(text))
        parsed = copy.deepcopy(_parse(text))  # the cache stays pristine
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    assert (kind, name) not in config.resources, f"{kind}.{name} declared twice"
                    config.resources[(kind, name)] = body
        for block in parsed.get("data", []):
            for kind, named in block.items():
                for name, body in named.items():
                    config.data[(kind, name)] = body
        for kind in ("variable", "output", "module"):
            target = {"variable": config.variables, "output": config.outputs, "module": config.modules}[kind]
            for block in parsed.get(kind, []):
                for name, body in block.items():
                    assert name not in target, f"{kind} {name} declared twice"
                    target[name] = body
        for block in parsed.get("locals", []):
            for name, value in block.items():
                assert name not in config.locals, f"local {name} declared twice"
                config.locals[name] = value
        config.terraform += parsed.get("terraform", [])
        config.providers += parsed.get("provider", [])
    config.text = "\n".join(texts)
    return config


def resolve(config: Config, value):
    """`${var.X}` -> X's default, `${local.X}` -> X's value (recursively); `${...}` inside a longer
    string is substituted when it resolves to a scalar. Anything else is returned as it is."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            kind, name = whole.groups()
            if kind == "var":
                return resolve(config, config.default(name))
            assert name in config.locals, f"no local {name}"
            return resolve(config, config.locals[name])

        def substitute(match: re.Match) -> str:
            try:
                resolved = resolve(config, match.group(0))
            except AssertionError:  # a required variable: no value to show
                return match.group(0)
            return str(resolved) if isinstance(resolved, (str, int, float)) else match.group(0)

        return _REFERENCE.sub(substitute, value)
    return value


def block(body: dict, name: str) -> dict:
    """The one nested block `name` of a body (blocks come as lists)."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one `{name}` block, got {blocks!r}"
    return blocks[0]


def type_text(variable: dict) -> str:
    text = variable.get("type", "")
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def _hcl_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_hcl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_hcl_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def docs_tables(config: Config) -> str:
    """The inputs and outputs tables, in declaration order."""
    lines = ["## Inputs", "", "| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    for name, variable in config.variables.items():
        required = "default" not in variable
        default = "n/a" if required else f"`{_cell(_hcl_value(variable['default']))}`"
        lines.append(
            f"| <a name=\"input_{name}\"></a> `{name}` | {_cell(variable.get('description', ''))} "
            f"| `{_cell(type_text(variable))}` | {default} | {'yes' if required else 'no'} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for name, output in config.outputs.items():
        lines.append(f"| <a name=\"output_{name}\"></a> `{name}` | {_cell(output.get('description', ''))} |")
    return "\n".join(lines)


def readme_with_tables(readme: str, tables: str) -> str:
    start, end = readme.find(BEGIN), readme.find(END)
    assert 0 <= start < end, f"{README.name} lacks the {BEGIN} ... {END} markers"
    return readme[: start + len(BEGIN)] + "\n" + tables + "\n" + readme[end:]


if __name__ == "__main__":
    tables = docs_tables(load(MODULE))
    if sys.argv[1:] == ["--write"]:
        README.write_text(readme_with_tables(README.read_text(), tables))
        print(f"updated {README}")
    else:
        print(tables)
