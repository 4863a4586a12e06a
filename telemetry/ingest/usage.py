"""Token usage as providers report it, normalised to one shape, and priced.

The provider's own usage object is read with `genai-prices` (which knows the OpenAI chat and
responses, Anthropic, Gemini and Bedrock shapes and whether their input counts include cached
tokens) and priced from its maintained price table. LangChain's `usage_metadata` is not a
provider format, so it is read here.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import genai_prices
from genai_prices import Usage

from telemetry.models.consolidated import CostSource


class UsageError(ValueError):
    """The usage object does not match any shape Lockstep knows."""


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Input counts include cached input; output counts include reasoning."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _langchain(usage: dict) -> UsageTotals:
    inputs = usage.get("input_token_details") or {}
    outputs = usage.get("output_token_details") or {}
    return UsageTotals(
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cached_input_tokens=_int(inputs.get("cache_read")),
        cache_write_tokens=_int(inputs.get("cache_creation")),
        reasoning_tokens=_int(outputs.get("reasoning")),
    )


def _provider_shape(usage: dict) -> tuple[dict, str, str]:
    """(response body, genai-prices provider id, API flavour) for a provider's usage object."""
    if "usageMetadata" in usage:
        return usage, "google", "default"
    if "promptTokenCount" in usage or "candidatesTokenCount" in usage:
        return {"usageMetadata": usage}, "google", "default"
    if "prompt_token_count" in usage:  # the google-genai Python SDK's snake_case
        camel = {
            "promptTokenCount": usage.get("prompt_token_count"),
            "candidatesTokenCount": usage.get("candidates_token_count") or 0,
            "cachedContentTokenCount": usage.get("cached_content_token_count"),
            "thoughtsTokenCount": usage.get("thoughts_token_count"),
        }
        return (
            {"usageMetadata": {k: v for k, v in camel.items() if v is not None}},
            "google",
            "default",
        )
    if "inputTokens" in usage or "outputTokens" in usage:
        return {"usage": usage}, "aws", "default"
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return {"usage": usage}, "openai", "chat"
    if "input_tokens_details" in usage or "output_tokens_details" in usage:
        return {"usage": usage}, "openai", "responses"
    if "input_tokens" in usage or "output_tokens" in usage:
        # Anthropic's shape; without cache fields it means the same as any other.
        return {"usage": usage}, "anthropic", "default"
    raise UsageError(
        "not a usage object Lockstep knows: send the provider's own usage, e.g. OpenAI "
        "{prompt_tokens, completion_tokens}, Anthropic {input_tokens, output_tokens}, Gemini "
        "{promptTokenCount, candidatesTokenCount}, Bedrock {inputTokens, outputTokens} or "
        "LangChain usage_metadata"
    )


def normalise_usage(usage: dict) -> UsageTotals:
    """Read a provider's usage object. Raises UsageError with a message a client can act on."""
    if "input_token_details" in usage or "output_token_details" in usage:
        return _langchain(usage)
    body, provider_id, flavour = _provider_shape(usage)
    for key, value in (body.get("usage") or body.get("usageMetadata") or {}).items():
        if isinstance(value, bool | float) or (isinstance(value, int) and value < 0):
            raise UsageError(f"{key} must be a non-negative whole number of tokens")
    try:
        found = genai_prices.extract_usage(body, provider_id=provider_id, api_flavor=flavour).usage
    except ValueError as exc:
        raise UsageError(str(exc).replace("`usage.", "`").replace("`usageMetadata.", "`")) from None
    # reported_value reads what the provider said; attribute access would infer the rest.
    return UsageTotals(
        input_tokens=_int(found.reported_value("input_tokens")),
        output_tokens=_int(found.reported_value("output_tokens")),
        cached_input_tokens=_int(found.reported_value("cache_read_tokens")),
        cache_write_tokens=_int(found.reported_value("cache_write_tokens")),
        reasoning_tokens=_int(found.reported_value("output_reasoning_tokens")),
    )


@lru_cache(maxsize=4096)
def _price(provider: str, model: str, tokens: tuple[int, int, int, int]) -> Decimal | None:
    usage = Usage(
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_read_tokens=tokens[2],
        cache_write_tokens=tokens[3],
    )
    for provider_id in (provider.lower(), None):
        try:
            return genai_prices.calc_price(usage, model, provider_id=provider_id).total_price
        except LookupError:
            continue
    return None


def price_call(
    provider: str, model: str, usage: UsageTotals | None, client_cost: Decimal | None
) -> tuple[Decimal | None, str]:
    """The cost of one LLM call and where it came from (a `CostSource` value)."""
    if client_cost is not None:
        return client_cost, CostSource.CLIENT
    if usage is None:
        return None, CostSource.NO_USAGE
    tokens = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_write_tokens,
    )
    cost = _price(provider, model, tokens)
    if cost is None:
        return None, CostSource.UNKNOWN_MODEL
    return cost.quantize(Decimal("1e-10")), CostSource.PRICE_TABLE
