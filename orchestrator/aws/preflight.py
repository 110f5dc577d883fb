"""Preflight: boto3 checks that take seconds and catch what would otherwise
fail minutes into an apply (a missing image, zone or certificate, a name too
long, a secret or key pending deletion, a quota with no room).

The stack's manifest names the checks (`[[preflight]]` in stack.toml) with
their arguments; this module is the library of named checks. Each returns one
Finding; a failure is one line naming the setting to change. Nothing here
writes to AWS, except the emulator-only seeders that `local seed` runs to give
an emulator the outside prerequisites the checks look for.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, OrchestratorError, ProblemsFound, error_code


@dataclass(frozen=True)
class Finding:
    check: str
    status: str  # "ok", "fail" or "skip"
    message: str

    @property
    def failed(self) -> bool:
        return self.status == "fail"


class PreflightFailed(ProblemsFound):
    """At least one preflight check failed; nothing was changed."""

    def __init__(self, findings: list[Finding]):
        failed = [f for f in findings if f.failed]
        # One line per failure: the CLI prints each as its own `error:` line.
        super().__init__("\n".join(f"preflight: {f.message}" for f in failed))
        self.findings = failed


@dataclass
class Context:
    env: Any  # config.Environment
    aws: Any  # aws.Aws
    project_root: Path
    # The units whose state tells what the stack already owns: a name taken by one of them is
    # the stack's own, any other is taken by something terraform would collide with.
    units: tuple[str, ...] = ()
    _held: set[str] | None = None

    @property
    def emulated(self) -> bool:
        return bool(self.aws.endpoint_url)

    def holds(self, identifier: str) -> bool:
        """Whether some unit's state holds a resource with this ARN or id (read once)."""
        from orchestrator.aws import orphans

        if self._held is None:
            try:
                self._held = orphans.state_identifiers(self.aws, self.env, self.units)
            except Exception as exc:  # noqa: BLE001 - no state bucket yet (before bootstrap): no state
                if error_code(exc) not in ("NoSuchBucket", "404"):
                    raise
                self._held = set()
        return orphans.is_held(identifier, self._held)

    def outside_state(self, what: str, identifier: str, error: str) -> str:
        return (
            f"{what} exists but no state of {self.env.env_id} holds it: creating it would fail ({error}); "
            f"import it into the unit that declares it (orchestrator tf {self.env.cli_args} UNIT -- import ADDRESS "
            f"{identifier}) or delete it"
        )

    def values(self) -> dict[str, Any]:
        return {
            **self.env.settings,
            "name_prefix": self.env.name_prefix,
            "environment": self.env.name,
            "env_id": self.env.env_id,
            "account_id": self.env.account_id,
            "region": self.env.region,
        }

    def render(self, template: str) -> str:
        try:
            return template.format(**self.values())
        except KeyError as exc:
            raise ConfigError(f"preflight template {template!r} names unknown setting {exc.args[0]!r}") from None

    def setting(self, name: str) -> Any:
        if name not in self.env.settings:
            raise ConfigError(f"preflight names unknown setting {name!r}")
        return self.env.settings[name]


def _ok(check: str, message: str) -> Finding:
    return Finding(check, "ok", message)


def _fail(check: str, message: str) -> Finding:
    return Finding(check, "fail", message)


def _skip(check: str, message: str) -> Finding:
    return Finding(check, "skip", message)


# ---- the checks ------------------------------------------------------------


def name_lengths(ctx: Context, names: list[dict]) -> Finding:
    for entry in names:
        name = ctx.render(entry["template"])
        if len(name) > int(entry["max"]):
            return _fail(
                "name_lengths",
                f"{entry['what']} name {name!r} has {len(name)} characters, AWS allows {entry['max']}: "
                f"shorten name_prefix ({ctx.env.name_prefix!r}) or the suffix",
            )
    return _ok("name_lengths", f"{len(names)} names within their limits")


ECR_IMAGE_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+?)(?::(?P<tag>[A-Za-z0-9._-]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def parse_ecr_image(image: str) -> dict[str, str] | None:
    m = ECR_IMAGE_RE.match(image)
    return m.groupdict() if m else None


def ecr_image(ctx: Context, image: str) -> Finding:
    value = ctx.setting(image)
    ref = parse_ecr_image(value)
    if ref is None:
        return _skip("ecr_image", f"{image} {value!r} is not an ECR image: not checked")
    ecr = ctx.aws.client("ecr", region=ref["region"])
    # The emulator plays every account as one: the image's account is the emulated one.
    registry = {} if ctx.emulated else {"registryId": ref["account"]}
    image_id = {"imageDigest": ref["digest"]} if ref["digest"] else {"imageTag": ref["tag"] or "latest"}
    try:
        ecr.describe_images(repositoryName=ref["repo"], imageIds=[image_id], **registry)
    except Exception as exc:  # noqa: BLE001 - the error code is the answer
        code = error_code(exc)
        if code == "RepositoryNotFoundException":
            return _fail(
                "ecr_image",
                f"settings.{image}: ECR repository {ref['repo']!r} does not exist in account "
                f"{'(emulated)' if ctx.emulated else ref['account']} ({ref['region']}): create it and push the image, "
                f"or change {image}",
            )
        if code == "ImageNotFoundException":
            return _fail(
                "ecr_image",
                f"settings.{image}: image {ref['repo']}:{ref['tag'] or ref['digest']} is not in ECR: "
                f"push it, or change {image}",
            )
        raise
    return _ok("ecr_image", f"{value} exists")


def hosted_zone(ctx: Context, domain: str) -> Finding:
    name = ctx.setting(domain)
    if not name:
        return _skip("hosted_zone", f"{domain} is empty: no DNS record")
    zones = ctx.aws.client("route53").list_hosted_zones_by_name(DNSName=name, MaxItems="5")["HostedZones"]
    public = [z for z in zones if z["Name"] == name.rstrip(".") + "." and not z.get("Config", {}).get("PrivateZone")]
    if not public:
        return _fail(
            "hosted_zone",
            f"settings.{domain}: no public hosted zone {name!r} in this account: create or delegate it, "
            f"or change {domain}",
        )
    return _ok("hosted_zone", f"public zone {name} ({public[0]['Id'].split('/')[-1]})")


def _covers(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def acm_certificate(ctx: Context, certificate_domain: str, covers: str) -> Finding:
    domain = ctx.setting(certificate_domain)
    if not domain:
        return _skip("acm_certificate", f"{certificate_domain} is empty: plain HTTP")
    acm = ctx.aws.client("acm")
    found = []
    for page in acm.get_paginator("list_certificates").paginate():
        found += [c for c in page["CertificateSummaryList"] if c["DomainName"] == domain]
    issued = [c for c in found if c.get("Status", "ISSUED") == "ISSUED"]
    details = [acm.describe_certificate(CertificateArn=c["CertificateArn"])["Certificate"] for c in issued or found]
    issued = [d for d in details if d["Status"] == "ISSUED"]
    if not issued:
        states = ", ".join(sorted({d["Status"] for d in details})) or "none"
        return _fail(
            "acm_certificate",
            f"settings.{certificate_domain}: no ISSUED ACM certificate for {domain!r} in {ctx.aws.region} "
            f"(found: {states}): request and validate it, or change {certificate_domain}",
        )
    host = ctx.render(covers)
    for cert in issued:
        names = {cert["DomainName"], *cert.get("SubjectAlternativeNames", [])}
        if any(_covers(n, host) for n in names):
            return _ok("acm_certificate", f"{domain} is ISSUED and covers {host}")
    return _fail(
        "acm_certificate",
        f"settings.{certificate_domain}: the certificate for {domain!r} does not cover {host}: "
        f"add it as a name, or change {certificate_domain}",
    )


def bucket_name_free(ctx: Context, bucket: str) -> Finding:
    name = ctx.render(bucket)
    try:
        ctx.aws.client("s3").head_bucket(Bucket=name)
    except Exception as exc:  # noqa: BLE001 - the status is the answer
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return _ok("bucket_name_free", f"bucket name {name} is free")
        if code in ("403", "AccessDenied"):
            return _fail(
                "bucket_name_free",
                f"S3 bucket name {name!r} belongs to another account (names are global): change name_prefix",
            )
        raise
    return _ok("bucket_name_free", f"bucket {name} is this account's")


def secret_not_pending_deletion(ctx: Context, secret: str) -> Finding:
    name = ctx.render(secret)
    try:
        meta = ctx.aws.client("secretsmanager").describe_secret(SecretId=name)
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) == "ResourceNotFoundException":
            return _ok("secret_not_pending_deletion", f"no secret {name} yet")
        raise
    if meta.get("DeletedDate") and _purged_soon(ctx, name, meta["DeletedDate"]):
        return _ok("secret_not_pending_deletion", f"secret {name} was deleted a moment ago: the name is free")
    if meta.get("DeletedDate"):
        return _fail(
            "secret_not_pending_deletion",
            f"secret {name!r} is scheduled for deletion ({meta['DeletedDate']:%Y-%m-%d}), so the name cannot be "
            f"created again: delete it now (aws secretsmanager delete-secret --secret-id {name} "
            "--force-delete-without-recovery) or wait for the window to end",
        )
    if ctx.units and not ctx.holds(meta["ARN"]):
        return _fail(
            "secret_not_pending_deletion", ctx.outside_state(f"secret {name!r}", meta["ARN"], "ResourceExistsException")
        )
    return _ok("secret_not_pending_deletion", f"secret {name} is live")


SECRET_PURGE_WAIT = 30.0  # seconds


def _purged_soon(ctx: Context, name: str, deleted, clock=time.monotonic, sleep=time.sleep) -> bool:
    """A secret force-deleted a moment ago (a teardown of an unprotected copy) keeps its name
    until Secrets Manager's asynchronous deletion runs
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html):
    waited for, briefly, when its deletion date is now. A scheduled deletion is not."""
    from datetime import datetime

    age = (datetime.now(UTC) - deleted).total_seconds()
    if not -10 <= age <= 300:
        return False
    sm = ctx.aws.client("secretsmanager")
    deadline = clock() + SECRET_PURGE_WAIT
    while clock() < deadline:
        sleep(1.0)
        try:
            sm.describe_secret(SecretId=name)
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "ResourceNotFoundException":
                return True
            raise
    return False


def kms_alias_usable(ctx: Context, aliases: list[str]) -> Finding:
    kms = ctx.aws.client("kms")
    for template in aliases:
        alias = ctx.render(template)
        try:
            key = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "NotFoundException":
                continue
            raise
        if key.get("KeyState") == "PendingDeletion":
            return _fail(
                "kms_alias_usable",
                f"KMS alias {alias} points at key {key['KeyId']}, which is pending deletion: cancel it "
                f"(aws kms cancel-key-deletion --key-id {key['KeyId']}) or delete the alias "
                f"(aws kms delete-alias --alias-name {alias})",
            )
        if ctx.units and not ctx.holds(alias):
            return _fail(
                "kms_alias_usable",
                ctx.outside_state(f"KMS alias {alias} (on key {key['KeyId']})", alias, "AlreadyExistsException"),
            )
    return _ok("kms_alias_usable", f"{len(aliases)} aliases free or the stack's own")


def dns_record_free(ctx: Context, domain: str, record: str) -> Finding:
    """The record the stack creates does not exist yet, unless the stack's own state holds it
    (terraform's aws_route53_record refuses to overwrite one: "already exists")."""
    zone_name = ctx.setting(domain)
    if not zone_name:
        return _skip("dns_record_free", f"{domain} is empty: no DNS record")
    name = ctx.render(record).rstrip(".")
    r53 = ctx.aws.client("route53")
    zones = r53.list_hosted_zones_by_name(DNSName=zone_name, MaxItems="5")["HostedZones"]
    zone = next((z for z in zones if z["Name"] == zone_name.rstrip(".") + "."), None)
    if zone is None:
        return _skip("dns_record_free", f"no hosted zone {zone_name} (the hosted_zone check says so)")
    zone_id = zone["Id"].split("/")[-1]
    sets = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=name, MaxItems="10")
    for rrset in sets["ResourceRecordSets"]:
        if rrset["Name"].rstrip(".").lower() != name.lower() or rrset["Type"] not in ("A", "AAAA", "CNAME"):
            continue
        if not ctx.holds(f"{zone_id}_{name}_{rrset['Type']}"):
            return _fail(
                "dns_record_free",
                ctx.outside_state(
                    f"DNS record {name} ({rrset['Type']})", f"{zone_id}_{name}_{rrset['Type']}", "already exists"
                ),
            )
    return _ok("dns_record_free", f"record {name} is free or the stack's own")


def file_has_certificates(ctx: Context, path: str, what: str, real_aws_only: bool = False) -> Finding:
    if real_aws_only and ctx.emulated:
        return _skip("file_has_certificates", f"{path}: not needed on the emulator")
    f = ctx.project_root / path
    if not f.is_file() or "-----BEGIN CERTIFICATE-----" not in f.read_text(errors="replace"):
        return _fail("file_has_certificates", f"{path} is missing or holds no certificate: {what}")
    return _ok("file_has_certificates", f"{path} holds certificates")


def _tagged_own(tags: list[dict] | None, env_id: str) -> bool:
    return any(t["Key"] == "EnvironmentSuffix" and t["Value"] == env_id for t in tags or [])


def _usage_vpcs(ctx: Context) -> tuple[int, int]:
    vpcs = ctx.aws.client("ec2").describe_vpcs()["Vpcs"]
    return len(vpcs), sum(_tagged_own(v.get("Tags"), ctx.env.env_id) for v in vpcs)


def _usage_eips(ctx: Context) -> tuple[int, int]:
    addresses = ctx.aws.client("ec2").describe_addresses()["Addresses"]
    return len(addresses), sum(_tagged_own(a.get("Tags"), ctx.env.env_id) for a in addresses)


def _usage_nat_per_az(ctx: Context) -> tuple[int, int]:
    ec2 = ctx.aws.client("ec2")
    nats = [
        n
        for n in ec2.describe_nat_gateways()["NatGateways"]
        if n["State"] in ("pending", "available") and not _tagged_own(n.get("Tags"), ctx.env.env_id)
    ]
    if not nats:
        return 0, 0
    subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}
    per_az: dict[str, int] = {}
    for n in nats:
        az = subnets.get(n["SubnetId"], "?")
        per_az[az] = per_az.get(az, 0) + 1
    return max(per_az.values()), 0


USAGE: dict[str, Callable[[Context], tuple[int, int]]] = {
    "L-F678F1CE": _usage_vpcs,  # VPCs per Region
    "L-0263D0A3": _usage_eips,  # EC2-VPC Elastic IPs
    "L-FE5A380F": _usage_nat_per_az,  # NAT gateways per Availability Zone
}

_NEED_RE = re.compile(r"^[\w\s()+\-*<>=!.]*$")


def evaluate_need(expression: str, settings: dict[str, Any]) -> int:
    """A small expression over settings, e.g. `1 if single_nat_gateway else az_count`."""
    if not _NEED_RE.match(expression) or "__" in expression:
        raise ConfigError(f"preflight quota: need {expression!r} is not a simple expression over settings")
    try:
        return int(eval(expression, {"__builtins__": {}}, dict(settings)))  # noqa: S307 - checked above
    except NameError as exc:
        raise ConfigError(f"preflight quota: need {expression!r}: {exc}") from None


def _quota_value(ctx: Context, service: str, code: str) -> tuple[float | None, str]:
    """The applied quota, else AWS's default; (None, why) when neither can be read
    (no permission, or a service the emulator does not model): the check is skipped."""
    sq = ctx.aws.client("service-quotas")
    why = ""
    for call in (sq.get_service_quota, sq.get_aws_default_service_quota):
        try:
            return float(call(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]), ""
        except Exception as exc:  # noqa: BLE001 - the error code is the answer
            why = error_code(exc) or type(exc).__name__
            if why in ("NoSuchResourceException", "NoSuchResource"):
                continue
            return None, why
    return None, why


def quota(ctx: Context, service: str, code: str, what: str, need: str) -> Finding:
    wanted = evaluate_need(need, ctx.env.settings)
    if code not in USAGE:
        raise ConfigError(f"preflight quota: no usage count for {code} (known: {', '.join(sorted(USAGE))})")
    used, own = USAGE[code](ctx)
    wanted = max(0, wanted - own)  # a redeploy needs nothing it already has
    if wanted == 0:
        return _ok("quota", f"{what}: nothing new needed")
    value, why = _quota_value(ctx, service, code)
    if value is None:
        return _skip("quota", f"{what} ({service} {code}): quota not readable here ({why})")
    if used + wanted > value:
        settings = sorted(n for n in re.findall(r"[A-Za-z_]\w*", need) if n in ctx.env.settings)
        hint = f" (settings: {', '.join(settings)})" if settings else ""
        return _fail(
            "quota",
            f"quota {what} ({service} {code}): {used} in use of {int(value)}, the deploy needs {wanted} more: "
            f"request an increase in Service Quotas or free some{hint}",
        )
    return _ok("quota", f"{what}: {used} + {wanted} of {int(value)}")


LAMBDA_UNRESERVED_FLOOR = 10  # AWS refuses a reservation that leaves fewer unreserved


def lambda_concurrency(ctx: Context, reserve: str) -> Finding:
    """Reserved concurrency the stack asks for must leave the account's floor unreserved
    (new accounts have a limit of 10: any reservation fails there)."""
    wanted = evaluate_need(reserve, ctx.env.settings)
    if wanted == 0:
        return _ok("lambda_concurrency", "the stack reserves no Lambda concurrency")
    try:
        limits = ctx.aws.client("lambda").get_account_settings()["AccountLimit"]
    except Exception as exc:  # noqa: BLE001
        return _skip(
            "lambda_concurrency", f"account limits not readable here ({error_code(exc) or type(exc).__name__})"
        )
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    if unreserved - wanted < LAMBDA_UNRESERVED_FLOOR:
        return _fail(
            "lambda_concurrency",
            f"Lambda concurrency: reserving {wanted} would leave {unreserved - wanted} unreserved of "
            f"{limits['ConcurrentExecutions']}, AWS keeps at least {LAMBDA_UNRESERVED_FLOOR}: request an increase "
            f"(Service Quotas lambda L-B99A9384) or reserve less",
        )
    return _ok("lambda_concurrency", f"reserving {wanted} leaves {unreserved - wanted} unreserved")


CHECKS: dict[str, Callable[..., Finding]] = {
    "lambda_concurrency": lambda_concurrency,
    "name_lengths": name_lengths,
    "ecr_image": ecr_image,
    "hosted_zone": hosted_zone,
    "acm_certificate": acm_certificate,
    "bucket_name_free": bucket_name_free,
    "secret_not_pending_deletion": secret_not_pending_deletion,
    "kms_alias_usable": kms_alias_usable,
    "dns_record_free": dns_record_free,
    "file_has_certificates": file_has_certificates,
    "quota": quota,
}


def _args(spec: dict) -> tuple[str, dict]:
    name = spec["check"]
    if name not in CHECKS:
        raise ConfigError(f"unknown preflight check {name!r} (known: {', '.join(sorted(CHECKS))})")
    return name, {k: v for k, v in spec.items() if k not in ("check", "when")}


def run(ctx: Context, specs: tuple[dict, ...] | list[dict]) -> list[Finding]:
    """Every check side by side (each is a few read calls); findings in manifest order."""
    calls = [(*_args(spec), spec.get("when")) for spec in specs]

    def one(call: tuple[str, dict, str | None]) -> Finding:
        name, args, when = call
        if when and not ctx.setting(when):  # `when` names a bool setting that switches the check on
            return _skip(name, f"{when} is off")
        try:
            return CHECKS[name](ctx, **args)
        except OrchestratorError:
            raise
        except TypeError as exc:
            raise ConfigError(f"preflight check {name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - an unexpected AWS answer is a failed check, in one line
            return _fail(name, f"{name}: could not check ({error_code(exc) or type(exc).__name__})")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, calls))


def check(ctx: Context, specs) -> list[Finding]:
    findings = run(ctx, specs)
    if any(f.failed for f in findings):
        raise PreflightFailed(findings)
    return findings


# ---- emulator seeding ------------------------------------------------------


def _seed_zone(ctx: Context, domain: str) -> str | None:
    name = ctx.setting(domain)
    if not name or not hosted_zone(ctx, domain).failed:
        return None
    ctx.aws.client("route53").create_hosted_zone(Name=name, CallerReference=f"orchestrator-seed-{name}")
    return f"hosted zone {name}"


def _self_signed(domain: str, names: list[str]) -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def _seed_certificate(ctx: Context, certificate_domain: str, covers: str) -> str | None:
    domain = ctx.setting(certificate_domain)
    if not domain or not acm_certificate(ctx, certificate_domain, covers).failed:
        return None
    cert, key = _self_signed(domain, sorted({domain, ctx.render(covers)}))
    ctx.aws.client("acm").import_certificate(Certificate=cert, PrivateKey=key)
    return f"issued certificate {domain}"


def _seed_image(ctx: Context, image: str) -> str | None:
    ref = parse_ecr_image(ctx.setting(image))
    if ref is None or not ecr_image(ctx, image).failed:
        return None
    ecr = ctx.aws.client("ecr", region=ref["region"])
    try:
        ecr.create_repository(repositoryName=ref["repo"])
    except Exception as exc:  # noqa: BLE001
        if error_code(exc) != "RepositoryAlreadyExistsException":
            raise
    manifest = (
        '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", '
        '"config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 0, '
        '"digest": "sha256:' + "0" * 64 + '"}, "layers": []}'
    )
    ecr.put_image(repositoryName=ref["repo"], imageManifest=manifest, imageTag=ref["tag"] or "latest")
    return f"image {ref['repo']}:{ref['tag'] or 'latest'}"


SEEDERS: dict[str, Callable[..., str | None]] = {
    "hosted_zone": _seed_zone,
    "acm_certificate": _seed_certificate,
    "ecr_image": _seed_image,
}


def seed(ctx: Context, specs) -> list[str]:
    """Emulator only: create what the checks look for outside the stack."""
    if not ctx.emulated:
        raise ConfigError("local seed works only against an emulator (use --local or --emulator-url)")
    done = []
    for spec in specs:
        name, args = _args(spec)
        if spec.get("when") and not ctx.setting(spec["when"]):
            continue
        if name in SEEDERS:
            made = SEEDERS[name](ctx, **args)
            if made:
                done.append(made)
    return done
