"""Usage normalisation and pricing: pure functions, tables of real provider shapes."""

from decimal import Decimal

import genai_prices
import pytest

from telemetry.ingest.usage import UsageError, UsageTotals, normalise_usage, price_call

SHAPES = [
    pytest.param(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 200,
            "total_tokens": 1200,
            "prompt_tokens_details": {"cached_tokens": 300},
            "completion_tokens_details": {"reasoning_tokens": 50},
        },
        UsageTotals(1000, 200, cached_input_tokens=300, reasoning_tokens=50),
        id="openai-chat-completions",
    ),
    pytest.param(
        {
            "input_tokens": 1000,
            "output_tokens": 200,
            "total_tokens": 1200,
            "input_tokens_details": {"cached_tokens": 300},
            "output_tokens_details": {"reasoning_tokens": 120},
        },
        UsageTotals(1000, 200, cached_input_tokens=300, reasoning_tokens=120),
        id="openai-responses",
    ),
    pytest.param(
        # Anthropic's input_tokens exclude cache reads and writes; the normalised input adds them.
        {
            "input_tokens": 100,
            "output_tokens": 200,
            "cache_creation_input_tokens": 50,
            "cache_read_input_tokens": 400,
        },
        UsageTotals(550, 200, cached_input_tokens=400, cache_write_tokens=50),
        id="anthropic-with-cache",
    ),
    pytest.param(
        {"input_tokens": 10, "output_tokens": 5},
        UsageTotals(10, 5),
        id="anthropic-plain",
    ),
    pytest.param(
        # Gemini's candidatesTokenCount leaves out thinking tokens; output includes them.
        {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "totalTokenCount": 150,
            "cachedContentTokenCount": 10,
            "thoughtsTokenCount": 30,
        },
        UsageTotals(100, 50, cached_input_tokens=10, reasoning_tokens=30),
        id="gemini-usageMetadata",
    ),
    pytest.param(
        {"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3}},
        UsageTotals(7, 3),
        id="gemini-wrapped",
    ),
    pytest.param(
        {"prompt_token_count": 7, "candidates_token_count": 3, "thoughts_token_count": 2},
        UsageTotals(7, 5, reasoning_tokens=2),
        id="gemini-python-sdk",
    ),
    pytest.param(
        {
            "inputTokens": 100,
            "outputTokens": 20,
            "totalTokens": 120,
            "cacheReadInputTokens": 5,
            "cacheWriteInputTokens": 7,
        },
        UsageTotals(112, 20, cached_input_tokens=5, cache_write_tokens=7),
        id="bedrock-converse",
    ),
    pytest.param(
        {
            "input_tokens": 350,
            "output_tokens": 240,
            "total_tokens": 590,
            "input_token_details": {"audio": 10, "cache_creation": 200, "cache_read": 100},
            "output_token_details": {"audio": 10, "reasoning": 200},
        },
        UsageTotals(
            350, 240, cached_input_tokens=100, cache_write_tokens=200, reasoning_tokens=200
        ),
        id="langchain-usage_metadata",
    ),
]


@pytest.mark.parametrize(("usage", "expected"), SHAPES)
def test_provider_usage_is_normalised(usage, expected):
    assert normalise_usage(usage) == expected


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"foo": 1}, "not a usage object Lockstep knows"),
        ({"prompt_tokens": 10}, "completion_tokens"),
        ({"prompt_tokens": -1, "completion_tokens": 2}, "non-negative whole number"),
        ({"prompt_tokens": 1.5, "completion_tokens": 2}, "non-negative whole number"),
        ({"prompt_tokens": True, "completion_tokens": 2}, "non-negative whole number"),
        ({"prompt_tokens": "12", "completion_tokens": 2}, "prompt_tokens"),
    ],
)
def test_unusable_usage_says_what_is_wrong(usage, message):
    with pytest.raises(UsageError, match=message):
        normalise_usage(usage)


def test_known_model_is_priced_from_the_price_table():
    usage = UsageTotals(1_000_000, 100_000, cached_input_tokens=200_000)
    cost, source = price_call("openai", "gpt-4o", usage, None)
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=200_000
        ),
        "gpt-4o",
        provider_id="openai",
    ).total_price
    assert source == "price_table"
    assert cost == expected
    assert cost > 0


def test_cached_input_is_cheaper_than_fresh_input():
    fresh, _ = price_call("openai", "gpt-4o", UsageTotals(10_000, 0), None)
    cached, _ = price_call(
        "openai", "gpt-4o", UsageTotals(10_000, 0, cached_input_tokens=10_000), None
    )
    assert cached < fresh


def test_client_cost_wins_over_the_price_table():
    cost, source = price_call("openai", "gpt-4o", UsageTotals(10, 10), Decimal("0.5"))
    assert (cost, source) == (Decimal("0.5"), "client")


def test_unknown_model_is_flagged_not_priced():
    assert price_call("acme", "acme-llm-9", UsageTotals(10, 10), None) == (None, "unknown_model")


def test_call_without_usage_is_flagged():
    assert price_call("openai", "gpt-4o", None, None) == (None, "no_usage")


def test_unknown_provider_with_known_model_is_still_priced():
    cost, source = price_call("my-gateway", "gpt-4o-mini", UsageTotals(1000, 1000), None)
    assert source == "price_table" and cost > 0
