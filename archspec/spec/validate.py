"""Validate a resolved document against the pydantic models (problems located by `problems`)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..core.errors import SpecError
from .block_language.family import families_from_spec
from .families import load_builtin_blocks
from .models import SpecModel
from .problems import count_omitted, problems_from
from .resolve import Document


def validate_document(doc: Document) -> SpecModel:
    """The validated model of a resolved document, or a SpecError listing every problem."""
    load_builtin_blocks()
    families = _user_families(doc)
    try:
        return SpecModel.model_validate(doc.data, context={"families": families})
    except ValidationError as exc:
        words = tuple(sorted({f for family in families.values() for f in family.model_fields}))
        problems = problems_from(exc, doc.data, doc.locator, words=words)
        raise SpecError(problems, omitted=count_omitted(exc, doc.data, len(problems))) from None


def _user_families(doc: Document) -> dict[str, Any]:
    """Block families defined in the spec's `blocks:` section (see `block_language`)."""
    defined = doc.data.get("blocks")
    if not defined:
        return {}
    return families_from_spec(defined, doc.locator)
