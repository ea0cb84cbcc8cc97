"""CIC014/CIC015: what could not be read, so nobody mistakes silence for safety."""

from __future__ import annotations

from ..report import Evidence, Severity
from ..snapshot import ReadProblem
from .facts import Facts, capped
from .registry import Hit, rule

ACCESS_SOURCES = ("https://kubernetes.io/docs/reference/access-authn-authz/rbac/",)


@rule(
    "CIC014",
    Severity.WARNING,
    "A resource could not be read: permission denied (verdict unknown)",
    sources=ACCESS_SOURCES,
    reads=("problems",),
    unknown=True,
)
def forbidden(facts: Facts) -> Hit | None:
    """CIC014: a 403; the rest of the check still ran."""
    problems = [p for p in facts.snapshot.problems if p.kind == "forbidden"]
    if not problems:
        return None
    resources = sorted({p.resource for p in problems})
    return Hit(
        summary=f"Not permitted to read {', '.join(resources)}: grant read access",
        detail="Checks that need these resources could not see them; the verdict cannot be 'compatible'.",
        evidence=capped(
            [
                Evidence(object=p.resource + (f" in {p.namespace}" if p.namespace else ""), note=p.message)
                for p in problems
            ]
        ),
        fix="Grant get/list on " + ", ".join(resources) + " (README, RBAC).",
    )


@rule(
    "CIC015",
    Severity.WARNING,
    "A resource could not be read: API error, unreachable or malformed (verdict unknown)",
    sources=(
        "https://kubernetes.io/docs/reference/using-api/api-concepts/",
        "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/",
    ),
    reads=("problems",),
    unknown=True,
)
def unreadable(facts: Facts) -> Hit | None:
    """CIC015: errors other than permission (timeouts, 5xx, undecodable objects)."""
    problems = [p for p in facts.snapshot.problems if p.kind != "forbidden"]
    if not problems:
        return None
    unreachable = any(p.kind == "unreachable" for p in problems)
    return Hit(
        summary=("Kubernetes API unreachable: " if unreachable else "Could not read ")
        + ", ".join(sorted({p.resource for p in problems})),
        detail="The check is incomplete; the verdict is 'unknown' until these can be read.",
        evidence=capped(
            [
                Evidence(
                    object=p.resource + (f" in {p.namespace}" if p.namespace else ""),
                    note=f"{p.kind}: {p.message}",
                )
                for p in problems
            ]
        ),
        fix=_fix(problems),
    )


def _fix(problems: list[ReadProblem]) -> str:
    """Malformed objects are fixed in the object, not in the network: say which applies."""
    steps: list[str] = []
    if any(p.kind == "invalid" for p in problems):
        steps.append(
            "Correct the field the evidence names in each malformed object "
            "(kubectl edit it, or fix the saved file it came from)."
        )
    if any(p.kind != "invalid" for p in problems):
        steps.append("Check the API server and network.")
    return " ".join(steps) + " Then check again."
