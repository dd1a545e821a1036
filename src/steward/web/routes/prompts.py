"""HTTP for prompts (``steward.llm.prompts``) and eval runs (``steward.llm.eval_runs``).

Its ``router`` holds:

- ``GET /v1/systems/{system}/prompts``: each prompt's newest version and its labels;
- ``GET /v1/systems/{system}/prompts/{prompt}?label=production`` (or ``?version=2``): one version
  with its messages, model and parameters; ``GET /v1/prompts/{prompt}`` finds the system when
  only one has a prompt of that name (what ``steward.Client.prompt`` calls);
- ``POST /v1/systems/{system}/prompts/{prompt}:render``: the messages with variables filled in;
- ``GET .../versions`` and ``GET .../history``;
- ``PUT .../labels/{label}`` (move), ``DELETE .../labels/{label}`` (remove) and
  ``POST .../labels/{label}:rollback``: the ``operator`` role's, recorded under the caller;
- ``GET /v1/evals`` and ``GET /v1/evals/{run_id}``: stored eval runs (run them with
  ``steward eval run``, which needs the eval files and the provider).

Reads are the ``viewer``'s (rendering, a POST, the ``client``'s). Responses name the version's
SHA-256 in an ``ETag``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from steward.errors import ConflictError, NotFoundError
from steward.llm import eval_runs, prompts
from steward.web.auth import CallerDep
from steward.web.deps import StewardDep
from steward.web.roles import Role, RoleRoute, requires

__all__ = [
    "LabelRequest",
    "RenderRequest",
    "eval_run",
    "list_evals",
    "prompt_anywhere",
    "router",
]


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | str = Field(description="A version number, or a label that points at one.")
    reason: str = Field(default="", max_length=10_000)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=10_000)


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=100)
    version: int | None = None
    variables: dict[str, Any] = Field(default_factory=dict)


router = APIRouter(route_class=RoleRoute, tags=["prompts"])
_PROMPT = "/v1/systems/{system}/prompts/{prompt}"


def _reference(label: str | None, version: int | None) -> int | str:
    return version if version is not None else (label or "production")


def _version(response: Response, found: prompts.PromptVersion) -> dict[str, Any]:
    response.headers["ETag"] = f'"{found.sha256}"'
    response.headers["Cache-Control"] = "no-cache"
    return found.to_dict()


@router.get("/v1/systems/{system}/prompts", dependencies=[requires(Role.VIEWER)])
def list_prompts(system: str, steward: StewardDep) -> dict[str, Any]:
    """Each prompt of the system: its newest version, with the labels set on any version."""
    labels = prompts.labels_by_prompt(steward.store, system)
    found = [
        {**newest.to_dict(), "labels": labels.get(newest.prompt, {})}
        for newest in prompts.list_prompts(steward.store, system)
    ]
    return {"system": system, "prompts": found}


@router.get(_PROMPT, dependencies=[requires(Role.VIEWER)])
def get_prompt(
    system: str,
    prompt: str,
    steward: StewardDep,
    response: Response,
    label: str | None = Query(default=None, max_length=100),
    version: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    """One version by ``label`` (default ``production``) or ``version``."""
    found = prompts.get_prompt(steward.store, system, prompt, _reference(label, version))
    return _version(response, found)


@router.get("/v1/prompts/{prompt}", dependencies=[requires(Role.VIEWER)])
def prompt_anywhere(
    prompt: str,
    steward: StewardDep,
    response: Response,
    label: str | None = Query(default=None, max_length=100),
    version: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    """The prompt of this name in whichever system has it; 409 when several do."""
    holders = prompts.systems_with_prompt(steward.store, prompt)
    if not holders:
        raise NotFoundError(
            f"no system has a prompt {prompt!r}; declare it under prompts: in steward.yaml "
            "and run `steward apply`"
        )
    if len(holders) > 1:
        raise ConflictError(
            f"several systems have a prompt {prompt!r} ({', '.join(holders)}); ask "
            f"/v1/systems/{{system}}/prompts/{prompt} (Client.prompt(..., system=...))"
        )
    found = prompts.get_prompt(steward.store, holders[0], prompt, _reference(label, version))
    return _version(response, found)


@router.post(_PROMPT + ":render", dependencies=[requires(Role.CLIENT)])
def render(system: str, prompt: str, body: RenderRequest, steward: StewardDep) -> dict[str, Any]:
    """The version's messages with ``variables`` filled in (a declared one missing is a 422)."""
    found = prompts.get_prompt(steward.store, system, prompt, _reference(body.label, body.version))
    return {
        "system": system,
        "prompt": prompt,
        "version": found.version,
        "sha256": found.sha256,
        "messages": found.parsed.render(body.variables),
    }


@router.get(_PROMPT + "/versions", dependencies=[requires(Role.VIEWER)])
def versions(system: str, prompt: str, steward: StewardDep) -> dict[str, Any]:
    """Every version of the prompt, oldest first."""
    found = prompts.list_prompt_versions(steward.store, system, prompt)
    return {"system": system, "prompt": prompt, "versions": [v.to_dict() for v in found]}


@router.get(_PROMPT + "/history", dependencies=[requires(Role.VIEWER)])
def history(system: str, prompt: str, steward: StewardDep) -> dict[str, Any]:
    """Every move of the prompt's labels, oldest first."""
    moves = prompts.label_history(steward.store, system, prompt)
    return {"system": system, "prompt": prompt, "history": [m.to_dict() for m in moves]}


@router.put(_PROMPT + "/labels/{label}", dependencies=[requires(Role.OPERATOR)])
def move_label(
    system: str,
    prompt: str,
    label: str,
    body: LabelRequest,
    steward: StewardDep,
    caller: CallerDep,
) -> dict[str, Any]:
    """Point the label at a version; 403 for a protected label, 409 without eval evidence."""
    change = prompts.move_label(
        steward.store, system, prompt, label, body.version, actor=caller.actor, reason=body.reason
    )
    return change.to_dict()


@router.delete(_PROMPT + "/labels/{label}", dependencies=[requires(Role.OPERATOR)])
def remove_label(
    system: str, prompt: str, label: str, steward: StewardDep, caller: CallerDep
) -> dict[str, Any]:
    """Remove the label: clients stop being served it within their staleness bound."""
    change = prompts.move_label(steward.store, system, prompt, label, None, actor=caller.actor)
    return change.to_dict()


@router.post(_PROMPT + "/labels/{label}:rollback", dependencies=[requires(Role.OPERATOR)])
def rollback_label(
    system: str,
    prompt: str,
    label: str,
    steward: StewardDep,
    caller: CallerDep,
    body: RollbackRequest | None = None,
) -> dict[str, Any]:
    """Move the label back to the version that held it before its last move."""
    change = prompts.rollback_label(
        steward.store,
        system,
        prompt,
        actor=caller.actor,
        reason=body.reason if body else "",
        label=label,
    )
    return change.to_dict()


@router.get("/v1/evals", dependencies=[requires(Role.VIEWER)])
def list_evals(
    steward: StewardDep,
    system: str | None = Query(default=None, max_length=200),
    prompt: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=50, ge=1, le=500),
) -> dict[str, Any]:
    """Eval runs, newest first, without their per-case results."""
    runs = eval_runs.list_runs(steward.store, system, prompt, limit)
    return {"runs": [run.to_dict(with_result=False) for run in runs]}


@router.get("/v1/evals/{run_id}", dependencies=[requires(Role.VIEWER)])
def eval_run(run_id: int, steward: StewardDep) -> dict[str, Any]:
    """One eval run with every case, assertion and repeat."""
    return eval_runs.get_run(steward.store, run_id).to_dict()
