"""Schemathesis hooks for the contract suite (loaded through SCHEMATHESIS_HOOKS).

JSON Schema counts 1.0 as an integer (a number with a zero fraction), so for
``"type": "integer"`` Schemathesis may send ``0.0`` and call it valid data. The
contract deliberately rejects any JSON float where an integer is due (docs/CONTRACT.md
section 3, "a JSON boolean or float is not an integer"), a rule no JSON Schema can state.
Generated bodies therefore send such values as integers; float rejection itself is
checked directly by ``test_items.py::test_quantity_rejected``. Negative cases
(``--mode all``) go through the same hook and stay negative: JSON Schema never calls an
integral float a type violation, and one that breaks a bound (``1000001.0``) breaks it
as an integer too.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _integral_floats_to_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_to_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(v) for v in value]
    return value


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    return _integral_floats_to_int(body)
