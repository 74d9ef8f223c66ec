"""The simulator's locates and fixed-income quotes against Alpaca's published reference.

alpaca-py (0.44, the latest) has no client for these endpoints, so the oracle here is the reference
itself: the required fields and types of ``Locate``, ``ListLocatesResponse``, ``ListLocateQuotesResponse``
and ``LocateError`` (Trading API), and ``fixed_income_latest_quotes_resp`` (Market Data API), written
down as JSON schemas and checked against what the simulator answers.
"""

from __future__ import annotations

from typing import Any

import httpx2
from jsonschema import validate

from tests.fixtures.simulator import SimAccount, SimulatorHandle

_DECIMAL_TEXT = {"type": ["string", "null"], "pattern": r"^\d+(\.\d+)?$"}
LOCATE = {
    "type": "object",
    "required": ["id", "symbol", "requested_qty", "all_or_none", "status", "created_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "symbol": {"type": "string"},
        "requested_qty": {"type": "integer"},
        "all_or_none": {"type": "boolean"},
        "status": {"enum": ["active", "expired", "rejected"]},
        "created_at": {"type": "string"},
        "expires_at": {"type": ["string", "null"]},
        "limit_price": _DECIMAL_TEXT,
        "located_price": _DECIMAL_TEXT,
        "located_qty": {"type": ["integer", "null"]},
        "total_fee": _DECIMAL_TEXT,
        "rejection_reason": {"type": ["string", "null"]},
    },
}
LOCATES_PAGE = {
    "type": "object",
    "required": ["locates", "next_page_token"],
    "properties": {
        "locates": {"type": "array", "items": LOCATE},
        "next_page_token": {"type": ["string", "null"]},
    },
}
LOCATE_QUOTES = {
    "type": "object",
    "required": ["quotes"],
    "properties": {
        "quotes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["symbol", "available_qty", "quoted_at"],
                "properties": {"available_qty": {"type": "integer"}, "price": {"type": "string"}},
            },
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["symbol", "code", "message"],
                "properties": {
                    "code": {
                        "enum": ["symbol_not_found", "easy_to_borrow", "threshold_security", "corporate_action",
                                 "quote_unavailable"]
                    }
                },
            },
        },
    },
}  # fmt: skip
LOCATE_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "code": {
            "enum": ["invalid_input", "invalid_request_body", "invalid_limit_price", "invalid_symbols",
                     "symbol_not_found", "security_not_found", "insufficient_buying_power", "easy_to_borrow",
                     "threshold_security", "idempotency_key_conflict", "quote_unavailable"]
        },
        "message": {"type": "string"},
    },
}  # fmt: skip
_FIXED_INCOME_QUOTE_FIELDS = ["t", "bp", "bs", "bms", "bytm", "bytw", "ap", "as", "ams", "aytm", "aytw"]
FIXED_INCOME_QUOTES = {
    "type": "object",
    "required": ["quotes"],
    "properties": {
        "quotes": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": _FIXED_INCOME_QUOTE_FIELDS,
                "properties": {
                    "t": {"type": "string"},
                    **{k: {"type": "number"} for k in ("bp", "ap", "bytm", "bytw", "aytm", "aytw")},
                    **{k: {"type": "integer"} for k in ("bs", "as", "bms", "ams")},
                },
            },
        }
    },
}


def test_locate_answers_have_alpacas_shapes(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    with httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers, timeout=5) as http:
        quotes = http.get("/v1/locates/quotes", params={"symbols": "GME,AAPL,NOSUCH"})
        assert quotes.status_code == 200
        validate(quotes.json(), LOCATE_QUOTES)
        created = http.post(
            "/v1/locates", json={"symbol": "GME", "qty": 100}, headers={"Idempotency-Key": "a-1"}
        )
        assert created.status_code == 201
        validate(created.json(), LOCATE)
        again = http.post(
            "/v1/locates", json={"symbol": "GME", "qty": 100}, headers={"Idempotency-Key": "a-1"}
        )
        assert again.json() == created.json()  # the original locate, not a second one
        rejected = http.post("/v1/locates", json={"symbol": "GME", "qty": 100, "limit_price": "0.001"})
        validate(rejected.json(), LOCATE)
        assert rejected.json()["status"] == "rejected" and "total_fee" not in rejected.json()
        page = http.get("/v1/locates", params={"limit": 5})
        validate(page.json(), LOCATES_PAGE)
        assert [loc["id"] for loc in page.json()["locates"]] == [rejected.json()["id"], created.json()["id"]]
        validate(http.get(f"/v1/locates/{created.json()['id']}").json(), LOCATE)
        errors: list[tuple[httpx2.Response, int, str]] = [
            (http.post("/v1/locates", json={"symbol": "GME", "qty": 150}), 400, "invalid_input"),
            (http.post("/v1/locates", json={"symbol": "AAPL", "qty": 100}), 422, "easy_to_borrow"),
            (http.post("/v1/locates", content=b"[1]"), 400, "invalid_request_body"),
            (http.post("/v1/locates", json={"symbol": "GME", "qty": 100, "limit_price": "x"}), 400,
             "invalid_limit_price"),
            (http.post("/v1/locates", json={"symbol": "GME", "qty": 200}, headers={"Idempotency-Key": "a-1"}), 422,
             "idempotency_key_conflict"),
        ]  # fmt: skip
        for answer, status, code in errors:
            assert answer.status_code == status, answer.text
            validate(answer.json(), LOCATE_ERROR)
            assert answer.json()["code"] == code
        assert http.get("/v1/locates/00000000-0000-0000-0000-000000000000").status_code == 404


def test_fixed_income_quotes_have_alpacas_shape(simulator: SimulatorHandle, sim_account: SimAccount) -> None:
    with httpx2.Client(base_url=simulator.base_url, headers=sim_account.headers, timeout=5) as http:
        answer: Any = http.get(
            "/v1beta1/fixed_income/latest/quotes", params={"isins": "US912797SX61,US912810SK51,XX1"}
        )
        assert answer.status_code == 200
        validate(answer.json(), FIXED_INCOME_QUOTES)
        assert sorted(answer.json()["quotes"]) == ["US912797SX61", "US912810SK51"]
        assert http.get("/v1beta1/fixed_income/latest/quotes").status_code == 422
