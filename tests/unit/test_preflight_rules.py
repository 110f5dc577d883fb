"""Preflight rules that need no AWS: need expressions, certificate name matching, the
Lambda concurrency floor, image parsing."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from orchestrator.aws import preflight as pf
from orchestrator.errors import ConfigError


def test_need_expression_over_settings():
    assert pf.evaluate_need("1 if single_nat_gateway else az_count", {"single_nat_gateway": False, "az_count": 3}) == 3
    assert pf.evaluate_need("1 if single_nat_gateway else az_count", {"single_nat_gateway": True, "az_count": 3}) == 1
    for bad in ("__import__('os')", "open('x')", "az_count; 1"):
        with pytest.raises(ConfigError):
            pf.evaluate_need(bad, {"az_count": 1})


def test_certificate_names_cover_hosts_like_tls_does():
    assert pf._covers("*.acme-payments.com", "api.acme-payments.com")
    assert not pf._covers("*.acme-payments.com", "acme-payments.com")
    assert not pf._covers("*.acme-payments.com", "a.b.acme-payments.com")
    assert pf._covers("api.acme-payments.com", "api.acme-payments.com")


def test_ecr_image_parsing():
    ref = pf.parse_ecr_image("345678901234.dkr.ecr.us-east-1.amazonaws.com/payments/api:1.42.0")
    assert ref == {
        "account": "345678901234",
        "region": "us-east-1",
        "repo": "payments/api",
        "tag": "1.42.0",
        "digest": None,
    }
    assert pf.parse_ecr_image("public.ecr.aws/nginx/nginx:1.27") is None


@dataclass
class FakeLambda:
    unreserved: int
    total: int

    def get_account_settings(self):
        return {"AccountLimit": {"UnreservedConcurrentExecutions": self.unreserved, "ConcurrentExecutions": self.total}}


@dataclass
class FakeAws:
    fn: FakeLambda
    endpoint_url: str | None = None

    def client(self, service, region=None):
        assert service == "lambda"
        return self.fn


@dataclass
class FakeEnv:
    settings: dict = field(default_factory=dict)


def test_lambda_reservation_must_leave_the_floor_unreserved():
    new_account = pf.Context(FakeEnv(), FakeAws(FakeLambda(10, 10)), None)
    assert pf.lambda_concurrency(new_account, reserve="1").failed
    assert pf.lambda_concurrency(new_account, reserve="0").status == "ok"
    big = pf.Context(FakeEnv(), FakeAws(FakeLambda(1000, 1000)), None)
    assert pf.lambda_concurrency(big, reserve="1").status == "ok"
