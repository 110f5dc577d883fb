from orchestrator.redact import MASK, Redactor


def test_known_values_are_masked():
    r = Redactor()
    r.add("s3cr3t-Passw0rd")
    assert r.redact("password is s3cr3t-Passw0rd here") == f"password is {MASK} here"


def test_short_values_are_not_registered():
    r = Redactor()
    r.add("ab")
    assert r.redact("about") == "about"


def test_aws_keys_tokens_and_uri_passwords():
    r = Redactor()
    assert "AKIAIOSFODNN7EXAMPLE" not in r.redact("key AKIAIOSFODNN7EXAMPLE used")
    line = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert "wJalrXUtnFEMI" not in r.redact(line)
    assert r.redact("postgres://admin:hunter22@db:5432/x") == f"postgres://admin:{MASK}@db:5432/x"
    assert "hunter22" not in r.redact('{"password": "hunter22"}')


def test_redact_obj_masks_secret_keys():
    r = Redactor()
    out = r.redact_obj({"db": {"password": "x", "host": "h"}, "list": ["a"]})
    assert out == {"db": {"password": MASK, "host": "h"}, "list": ["a"]}
