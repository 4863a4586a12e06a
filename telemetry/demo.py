"""Realistic demo runs: several workflows, models, providers, users and conversations over
the last days, with failures and retries. Run ids depend only on the run's number and times on
the current hour, so loading them again never adds runs, and within the hour changes nothing."""

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

DEMO_NAMESPACE = uuid.UUID("6f1d1a52-4a8e-4f39-9a0b-5b7f1c3e2d10")

# (provider, model, usage shape, $/1M input, weight). Usage is sent in the provider's shape.
MODELS = [
    ("openai", "gpt-4o", "openai_chat", 6),
    ("openai", "gpt-4o-mini", "openai_chat", 10),
    ("openai", "o3-mini", "openai_responses", 3),
    ("anthropic", "claude-sonnet-4-5", "anthropic", 6),
    ("anthropic", "claude-3-5-haiku-latest", "anthropic", 4),
    ("google", "gemini-2.5-flash", "gemini", 5),
    ("aws", "amazon.nova-lite-v1:0", "bedrock", 2),
    ("openai", "gpt-4o-mini", "langchain", 3),
    ("acme", "acme-internal-llm-2", "openai_chat", 1),  # not in any price table
]

WORKFLOWS = {
    "support-triage": ["build_prompt", "retrieve_kb", "classify", "draft_reply"],
    "invoice-extraction": ["ocr", "extract_fields", "validate_totals", "post_to_erp"],
    "web-checkout-agent": ["open_page", "plan", "fill_form", "click_submit", "verify"],
    "sql-assistant": ["build_prompt", "generate_sql", "run_sql", "summarise"],
    "research-summary": ["search", "retrieve", "summarise", "critique", "final_answer"],
}
KIND_BY_NODE = {
    "build_prompt": "code",
    "retrieve_kb": "retrieval",
    "retrieve": "retrieval",
    "search": "tool",
    "ocr": "tool",
    "validate_totals": "code",
    "post_to_erp": "tool",
    "open_page": "browser",
    "fill_form": "browser",
    "click_submit": "browser",
    "verify": "browser",
    "run_sql": "tool",
}
CHANNELS = ["web", "voice", "efax", "api"]


def _usage(shape: str, rng: random.Random) -> dict:
    prompt = rng.randint(300, 6000)
    completion = rng.randint(40, 1200)
    cached = rng.choice([0, 0, 0, prompt // 2])
    reasoning = rng.randint(100, 800) if shape == "openai_responses" else 0
    if shape == "openai_chat":
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
    if shape == "openai_responses":
        return {
            "input_tokens": prompt,
            "output_tokens": completion + reasoning,
            "total_tokens": prompt + completion + reasoning,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens_details": {"reasoning_tokens": reasoning},
        }
    if shape == "anthropic":
        return {
            "input_tokens": prompt - cached,
            "output_tokens": completion,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
        }
    if shape == "gemini":
        return {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion,
        }
    if shape == "bedrock":
        return {
            "inputTokens": prompt,
            "outputTokens": completion,
            "totalTokens": prompt + completion,
        }
    return {  # LangChain usage_metadata
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": prompt + completion,
        "input_token_details": {"cache_read": cached},
    }


def _ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def demo_runs(count: int, days: int = 14, until: datetime | None = None) -> Iterator[dict]:
    """`count` run documents spread over the `days` before `until` (default: this hour)."""
    until = until or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    weights = [m[3] for m in MODELS]
    span = days * 86400
    for i in range(count):
        rng = random.Random(i)
        workflow, nodes = rng.choice(list(WORKFLOWS.items()))
        started = until - timedelta(seconds=span * (1 - i / count))
        provider, model, shape, _ = rng.choices(MODELS, weights)[0]
        user = f"user-{rng.randint(1, 40):03d}"
        fails = rng.random() < 0.06
        failing_step = rng.randrange(len(nodes)) if fails else -1
        steps, clock = [], started + timedelta(milliseconds=rng.randint(5, 50))
        for number, node in enumerate(nodes, start=1):
            kind = KIND_BY_NODE.get(node, "llm")
            took = timedelta(
                milliseconds=rng.randint(300, 9000) if kind == "llm" else rng.randint(20, 1500)
            )
            failed = number - 1 == failing_step
            step = {
                "step_number": number,
                "node_id": f"{workflow}.{node}",
                "name": node,
                "kind": kind,
                "status": "failed" if failed else "completed",
                "retry_count": rng.choice([0, 0, 0, 0, 1, 2]),
                "started_at": _ts(clock),
                "ended_at": _ts(clock + took),
                "events": [
                    {"type": "node_started", "timestamp": _ts(clock), "data": {"node": node}},
                    {
                        "type": "node_finished",
                        "timestamp": _ts(clock + took),
                        "data": {"ok": not failed},
                    },
                ],
            }
            if kind == "llm":
                step["llm"] = {
                    "provider": provider,
                    "model": model,
                    "usage": _usage(shape, rng),
                    "temperature": rng.choice([0.0, 0.2, 0.7]),
                    "prompt": f"[{workflow}] {node}: instructions and context for {user}",
                    "response": f"{node} result #{i}",
                    "time_to_first_token_ms": rng.randint(120, 1800),
                }
            if kind == "browser":
                step["screenshots"] = [
                    {
                        "url": f"s3://lockstep-demo/{i}/{number}.png",
                        "thumbnail_url": f"s3://lockstep-demo/{i}/{number}.thumb.png",
                        "timestamp": _ts(clock + took),
                        "action": node,
                        "selector": "#submit" if node == "click_submit" else "form",
                        "element_found": not failed,
                        "confidence": round(rng.uniform(0.6, 0.99), 2),
                    }
                ]
            if failed:
                step["error"] = {
                    "message": f"{node} failed: upstream timeout",
                    "details": {"code": "TIMEOUT", "attempts": step["retry_count"] + 1},
                }
            steps.append(step)
            clock += took + timedelta(milliseconds=rng.randint(1, 40))
            if failed:
                break
        status = "failed" if fails else rng.choices(["completed", "cancelled"], [98, 2])[0]
        run = {
            "run_id": str(uuid.uuid5(DEMO_NAMESPACE, str(i))),
            "workflow_id": workflow,
            "status": status,
            "channel": rng.choice(CHANNELS),
            "external_id": f"ext-{i:06d}",
            "user_id": user,
            "started_at": _ts(started),
            "ended_at": _ts(clock),
            "context": {
                "correlation_id": f"corr-{i:06d}",
                "tenant": rng.choice(["acme", "globex"]),
                "retry_attempt": 0,
            },
            "endpoints_used": [f"/api/{workflow}/{n}" for n in nodes[:2]],
            "tier": rng.randint(1, 3),
            "steps": steps,
        }
        if workflow in ("support-triage", "research-summary"):
            run["conversation_id"] = f"conv-{rng.randint(1, 300):04d}"
        if fails:
            run["error"] = {"message": steps[-1]["error"]["message"]}
        yield run
