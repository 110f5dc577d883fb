"""What the guard policies read in a saved plan's JSON (`terraform show -json tfplan`). Pure:
a plan document in, addresses out (orchestrator.policies judges them):

- the deletes and replaces of resources of given (stateful) types;
- the ingress rules that open a security group to the whole internet (0.0.0.0/0 or ::/0),
  with the group each one opens.
"""

from __future__ import annotations

from collections.abc import Iterable

WORLD = {"0.0.0.0/0", "::/0"}


def base_address(address: str) -> str:
    """aws_security_group_rule.x["a"] -> aws_security_group_rule.x (module paths kept)."""
    return address.split("[", 1)[0]


def stateful_deletes(plan: dict, stateful_types: Iterable[str]) -> list[str]:
    types = set(stateful_types)
    return [
        rc["address"]
        for rc in plan.get("resource_changes", [])
        if rc.get("mode", "managed") == "managed"
        and rc.get("type") in types
        and "delete" in rc.get("change", {}).get("actions", [])
    ]


def _config_resources(plan: dict) -> dict[str, dict]:
    """Configured resources by address (root module and nested module calls)."""
    out: dict[str, dict] = {}

    def walk(module: dict, prefix: str) -> None:
        for r in module.get("resources", []):
            out[prefix + r["address"]] = r
        for name, call in module.get("module_calls", {}).items():
            walk(call.get("module", {}), f"{prefix}module.{name}.")

    walk(plan.get("configuration", {}).get("root_module", {}), "")
    return out


def _prior_groups(plan: dict) -> dict[str, str]:
    """Security group id -> address, for groups already in state."""
    out = {}

    def walk(module: dict) -> None:
        for r in module.get("resources", []):
            if r.get("type") == "aws_security_group" and (r.get("values") or {}).get("id"):
                out[r["values"]["id"]] = r["address"]
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan.get("prior_state", {}).get("values", {}).get("root_module", {}))
    return out


def _group_of(rc: dict, after: dict, config: dict[str, dict], prior: dict[str, str]) -> str:
    refs = (
        config.get(base_address(rc["address"]), {})
        .get("expressions", {})
        .get("security_group_id", {})
        .get("references", [])
    )
    module = rc["address"].rsplit(rc["type"], 1)[0]  # "module.x." or ""
    for ref in refs:
        if ref.startswith("aws_security_group.") and ref.count(".") == 1:
            return module + ref
    group_id = after.get("security_group_id")
    return prior.get(group_id, str(group_id or "an unknown group"))


def open_to_world(plan: dict) -> list[tuple[str, str]]:
    """(rule address, group address) of every ingress the plan creates or changes that admits the internet."""
    config, prior = _config_resources(plan), _prior_groups(plan)
    found = []
    for rc in plan.get("resource_changes", []):
        change = rc.get("change", {})
        if not ({"create", "update"} & set(change.get("actions", []))):
            continue
        after = change.get("after") or {}
        rtype = rc.get("type")
        if rtype == "aws_vpc_security_group_ingress_rule":
            if after.get("cidr_ipv4") in WORLD or after.get("cidr_ipv6") in WORLD:
                found.append((rc["address"], _group_of(rc, after, config, prior)))
        elif rtype == "aws_security_group_rule":
            cidrs = set(after.get("cidr_blocks") or []) | set(after.get("ipv6_cidr_blocks") or [])
            if after.get("type") == "ingress" and cidrs & WORLD:
                found.append((rc["address"], _group_of(rc, after, config, prior)))
        elif rtype == "aws_security_group":
            for rule in after.get("ingress") or []:
                if (set(rule.get("cidr_blocks") or []) | set(rule.get("ipv6_cidr_blocks") or [])) & WORLD:
                    found.append((rc["address"], base_address(rc["address"])))
                    break
    return found
