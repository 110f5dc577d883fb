"""Real plans (`terraform show -json`) of every unit of an environment, against moto.

Upstream outputs are stand-ins shaped like the real ones, so each unit plans
on its own without deploying the others first; nothing is applied.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from orchestrator.aws import local
from orchestrator.aws.bootstrap import Bootstrapper
from orchestrator.aws.clients import Aws
from orchestrator.cli.session import Options, build_terraform
from orchestrator.core.context import RunContext
from orchestrator.core.runner import UnitResult
from orchestrator.core.units import Units
from orchestrator.model.config import Project, load_emulator_overrides, load_environment, load_stack
from orchestrator.redact import Redactor
from orchestrator.state.statestore import StateStore

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = local.EMULATOR_ACCOUNT_ID


def stand_in_outputs(settings: dict) -> dict[str, dict]:
    """Shaped like the units' real outputs for these settings."""
    az_count = settings["az_count"]
    arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key"
    return {
        "network": {
            "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "public_subnet_ids": [f"subnet-0pub{i}" for i in range(az_count)],
            "private_subnet_ids": [f"subnet-0prv{i}" for i in range(az_count)],
        },
        "security": {
            "alb_security_group_id": "sg-0alb",
            "app_security_group_id": "sg-0app",
            "db_security_group_id": "sg-0db",
            "rotation_security_group_id": "sg-0rot",
            "data_kms_key_arn": f"{arn}/data-0000",
            "logs_kms_key_arn": f"{arn}/logs-0000" if settings["kms_encrypted_logs"] else "",
            "alerts_kms_key_arn": f"{arn}/alerts-0000",
        },
        "database": {
            "secret_arn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:payments-db-credentials-x-AbCdEf",
            "app_secret_arn": (
                f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:payments-db-app-credentials-x-GhIjKl"
                if settings["enable_rotation"]
                else f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:payments-db-credentials-x-AbCdEf"
            ),
            "cluster_id": "payments-db-x",
            "rotation_function_name": "payments-db-rotation-x" if settings["enable_rotation"] else "",
        },
        "edge": {
            "target_group_arn": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/payments-api-x/0123",
            "listener_arn": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:listener/app/payments-alb-x/01/23",
            "alb_arn_suffix": "app/payments-alb-x/0123",
        },
        "observability": {
            "log_group_name": "/ecs/payments-api-x",
            "log_group_arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/ecs/payments-api-x",
            "alerts_topic_arn": f"arn:aws:sns:us-east-1:{ACCOUNT}:payments-alerts-x",
        },
    }


@dataclass
class EnvPlans:
    env_name: str
    settings: dict
    plans: dict[str, dict]
    secrets: list[str]
    stand_ins: dict[str, dict]
    work: Path
    zone_id: str | None
    env_id: str = ""
    name_prefix: str = "payments"

    def changes(self, unit: str, rtype: str | None = None) -> list[dict]:
        return [
            rc
            for rc in self.plans[unit].get("resource_changes", [])
            if rc["mode"] == "managed" and (rtype is None or rc["type"] == rtype)
        ]

    def config_resources(self, unit: str) -> list[dict]:
        return self.plans[unit]["configuration"]["root_module"].get("resources", [])

    def config(self, unit: str, address: str) -> dict:
        return next(r for r in self.config_resources(unit) if r["address"] == address)


def plan_environment(
    env_name: str,
    moto_url: str,
    mirror: str,
    work: Path,
    *,
    parallel: int = 3,
    suffix: str = "plan",
    name_prefix: str | None = None,
    settings: dict | None = None,
    units: list[str] | None = None,
) -> EnvPlans:
    """Plans of every unit (or `units`) of an environment copy; `settings` override the
    environment's (e.g. the manifest's teardown settings), `name_prefix` its prefix."""
    from dataclasses import replace

    from orchestrator.aws import preflight

    project = Project(ROOT)
    stack = load_stack(project.terraform_dir)
    env = load_environment(project.environments_dir, env_name, stack).with_suffix(suffix)
    env = env.with_account(ACCOUNT).with_settings(load_emulator_overrides(project.environments_dir, stack))
    if name_prefix:
        env = replace(env, name_prefix=name_prefix)
    if settings:
        env = env.with_settings(settings)
    aws = Aws(env.region, endpoint_url=moto_url)
    Bootstrapper(aws, env, project.backend_file, emulated=True, repair=False, verify_only=False).run()
    # The outside prerequisites (zone, certificate, image), as `local seed` makes them.
    preflight.seed(preflight.Context(env, aws, ROOT), stack.preflight)
    zone_id = None
    if env.settings["domain_name"]:
        name = env.settings["domain_name"] + "."
        zones = aws.client("route53").list_hosted_zones_by_name(DNSName=name)["HostedZones"]
        (zone,) = [z for z in zones if z["Name"] == name]  # staging's zone is a sub-domain of prod's
        zone_id = zone["Id"].split("/")[-1]
    redactor = Redactor()
    tf = build_terraform(Options(), mirror, work, redactor, aws.terraform_env())
    steps = Units(
        RunContext(stack, env, tf, StateStore(aws, env, moto_url), aws, redactor, work, emulator_url=moto_url)
    )
    stand_ins = stand_in_outputs(env.settings)
    secrets: list[str] = []

    def plan_unit(unit: str) -> tuple[str, dict]:
        ws = steps.prepare(unit, steps.variables_for(unit, stand_ins), UnitResult(unit))
        extra = steps.secret_env(unit)
        secrets.extend(extra.values())
        tf.plan(ws, extra_env=extra)
        return unit, tf.show_plan(ws)

    with ThreadPoolExecutor(parallel) as pool:
        plans = dict(pool.map(plan_unit, units or stack.graph.order()))
    for unit, plan in plans.items():
        (work / f"{env_name}-{unit}.plan.json").write_text(json.dumps(plan))
    return EnvPlans(env_name, env.settings, plans, secrets, stand_ins, work, zone_id, env.env_id, env.name_prefix)
