"""Security group rules nobody declared: the drift a refresh cannot name by itself.

A stack that declares its rules as separate resources (aws_security_group_rule,
aws_vpc_security_group_ingress_rule / _egress_rule) leaves the group's own `ingress` and
`egress` attributes unset, so terraform neither shows nor reverts a rule added behind its back
(docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html; the provider's
aws_security_group page: "Terraform ... will not manage rules ... declared with
aws_security_group_rule"). Yet an inbound rule opened by hand on the database's group is the
change a PCI assessor asks about first (PCI DSS v4 1.2.7: network security controls reviewed).

Pure: one unit's refresh-only plan (`terraform show -json`) in, findings out. A group is judged
only where the same unit declares at least one rule for it: a group whose rules all live in
another unit cannot be judged from this unit's state, and is left alone rather than paged about.
"""

from __future__ import annotations

from collections.abc import Iterator

# AWS answers a rule's protocol by name where one exists; a configuration may give the number.
_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}
RULE_TYPES = {
    "aws_security_group_rule": None,  # `type` says ingress or egress
    "aws_vpc_security_group_ingress_rule": "ingress",
    "aws_vpc_security_group_egress_rule": "egress",
}


def _resources(module: dict) -> Iterator[dict]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _resources(child)


def _proto(value) -> str:
    p = str(value if value is not None else "-1").lower()
    return _PROTOCOLS.get(p, p)


def _ports(proto: str, low, high) -> tuple[int, int]:
    # "all traffic" covers every port whatever the numbers say (AWS answers -1 or 0).
    return (0, 0) if proto == "-1" else (int(low or 0), int(high or 0))


def _group_id(value: str) -> str:
    return value.split("/")[-1]  # another account's group reads "123456789012/sg-..."


def _sources(v: dict, group: str) -> Iterator[tuple[str, str]]:
    for c in v.get("cidr_blocks") or []:
        yield "cidr", c
    for c in v.get("ipv6_cidr_blocks") or []:
        yield "cidr", c
    for p in v.get("prefix_list_ids") or []:
        yield "prefix list", p
    for g in v.get("security_groups") or []:
        yield ("self", group) if _group_id(g) == group else ("group", _group_id(g))
    if v.get("self"):
        yield "self", group


def _declared(r: dict) -> tuple[str, set[tuple]] | None:
    """(group id, atoms) of one rule resource, None if it is not one."""
    kind = r.get("type")
    if r.get("mode") != "managed" or kind not in RULE_TYPES:
        return None
    v = r.get("values") or {}
    group = v.get("security_group_id")
    if not group:
        return None
    direction = RULE_TYPES[kind] or v.get("type")
    proto = _proto(v.get("protocol") if kind == "aws_security_group_rule" else v.get("ip_protocol"))
    ports = _ports(proto, v.get("from_port"), v.get("to_port"))
    if kind == "aws_security_group_rule":
        sources = set(_sources(v, group))
        if v.get("source_security_group_id"):
            sid = _group_id(v["source_security_group_id"])
            sources.add(("self", group) if sid == group else ("group", sid))
    else:
        sources = {
            ("cidr", v.get("cidr_ipv4") or v.get("cidr_ipv6")),
            ("prefix list", v.get("prefix_list_id")),
            ("group", _group_id(v.get("referenced_security_group_id") or "")),
        }
        sources = {("self", group) if s == ("group", group) else s for s in sources if s[1]}
    return group, {(direction, proto, *ports, *s) for s in sources}


def _actual(v: dict) -> set[tuple]:
    group = v.get("id", "")
    atoms = set()
    for direction in ("ingress", "egress"):
        for rule in v.get(direction) or []:
            proto = _proto(rule.get("protocol"))
            ports = _ports(proto, rule.get("from_port"), rule.get("to_port"))
            atoms |= {(direction, proto, *ports, *s) for s in _sources(rule, group)}
    return atoms


def describe(atom: tuple) -> str:
    direction, proto, low, high, kind, source = atom
    ports = "all ports" if proto == "-1" else (f"port {low}" if low == high else f"ports {low}-{high}")
    what = "all traffic" if proto == "-1" else f"{proto} {ports}"
    where = "from" if direction == "ingress" else "to"
    return f"{direction} {what} {where} {'itself' if kind == 'self' else f'{kind} {source}'}"


def unmanaged_rules(plan: dict) -> list[dict]:
    """Each security group (of this unit, with rules declared in it) holding a rule no resource
    declares: {"address", "actions": ["update"], "attributes": [], "unmanaged": [what, ...]}."""
    resources = list(_resources((plan.get("prior_state") or {}).get("values", {}).get("root_module", {})))
    declared: dict[str, set[tuple]] = {}
    for r in resources:
        got = _declared(r)
        if got:
            declared.setdefault(got[0], set()).update(got[1])
    found = []
    for r in resources:
        if r.get("mode") != "managed" or r.get("type") != "aws_security_group":
            continue
        v = r.get("values") or {}
        if v.get("id") not in declared:
            continue
        extra = sorted(_actual(v) - declared[v["id"]])
        if extra:
            found.append(
                {
                    "address": r["address"],
                    "actions": ["update"],
                    "attributes": [],
                    "unmanaged": [describe(a) for a in extra],
                }
            )
    return found
