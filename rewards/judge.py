"""Generative rewards: an LLM judges a completion.

Three backends serve the judge model:
- http: an OpenAI-compatible endpoint (`vllm serve`, SGLang, TGI, llama.cpp server, OpenAI) at
  `url` (e.g. http://127.0.0.1:8000/v1), called with timeouts, retries with exponential backoff
  on connection errors, 429 and 5xx, and an in-memory cache keyed by the request; a batch's
  requests go out from `workers` threads at once;
- hf: a local Hugging Face model directory at `url`, generating through the `hf` engine
  in-process (for small judges and tests);
- vllm: a local model directory at `url`, generating through the colocated `vllm` engine
  in-process.
Both serve through any JudgeBackend (the protocol below: a batch of judge prompts -> outputs with
the labels' log-probs); HTTPJudge is the http one. rewards/ never imports rl/, so a local model is
judged by a backend that the layer above builds: compute_rewards(..., local_judge=factory), the
trainer and `asymptote verifier-report` passing EngineJudge (rl/rollout/judge.py), which takes a
whole batch in one engine.generate call (every completion's judge prompt, k samples each as the
engine's n). Without a factory a local backend raises LocalJudgeMissing.

compute_rewards calls `llm_judge.batch` (llm_judge_batch) with the batch's completions; llm_judge
itself scores one completion (a batch of one; over http only, as it takes no factory).

Templates:
- verdict: "is the response correct? yes or no". Where log-probs are available (hf always; http
  when the server returns top_logprobs) the score is P(yes) / (P(yes) + P(no)) of the first token,
  else 1/0 from the text;
- score: a 1-10 rating, scored (s - 1) / 9;
- pairwise: the response against the reference answer (prompt.answer), shown in both orders
  (half the samples each, against position bias); 1 if the response wins, 0 if it loses, 0.5 tie.

Each of `samples` judge outputs is parsed; unparseable ones are dropped and counted in
JUDGE_STATS; `aggregate` is the mean of the parsed scores or a majority vote (score >= 0.5). If no
output parses the reward raises (for that completion only), which compute_rewards logs and counts
as a zero.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Callable, Literal, Protocol

from pydantic import Field

from envs.base import Prompt
from rewards.outcomes import Outcomes

JUDGE_STATS = Outcomes()
"""requests (to a backend), cache_hits, samples (judge outputs read), unparseable."""


TEMPLATES = {
    "verdict": (
        "You are grading a response to a task.\n\nTask:\n{question}\n\n{reference}Response:\n{response}\n\n"
        "{criteria}Is the response correct? Answer with one word, yes or no."
    ),
    "score": (
        "You are grading a response to a task.\n\nTask:\n{question}\n\n{reference}Response:\n{response}\n\n"
        "{criteria}Rate the response from 1 (worst) to 10 (best). Answer with the number only."
    ),
    "pairwise": (
        "Two responses to one task.\n\nTask:\n{question}\n\nResponse A:\n{a}\n\nResponse B:\n{b}\n\n"
        "{criteria}Which response is better? Answer with one letter, A or B (or 'tie')."
    ),
}


class JudgeError(RuntimeError):
    """A judge that could not be asked (unreachable, refused) or whose every output failed to parse."""


@dataclass(frozen=True)
class JudgeOutput:
    text: str
    label_logprobs: dict[str, float] | None = None
    """Log-prob of each asked-for label as the first token (-inf if not among the top ones); None
    when the backend gave no log-probs."""


class JudgeBackend(Protocol):
    """What serves a judge model: HTTPJudge here; EngineJudge (rl/rollout/judge.py) in process."""

    def complete_batch(self, requests: list[tuple[str, int]], *, labels: tuple[str, ...] = (),
                       temperature: float = 0.0, max_tokens: int = 16,
                       workers: int = 1) -> list[list[JudgeOutput] | Exception]:
        """For each (judge prompt, n): n judge outputs, or the error that request met. With
        `labels` (the verdict's ("yes", "no")) each output carries the labels' first-token
        log-probs (label_logprobs), or None where the backend has none; `workers`: requests in
        flight at once, for a backend that sends them one by one."""
        ...


LocalJudgeFactory = Callable[[str, str], JudgeBackend]
"""(model path, engine 'hf' or 'vllm') -> the backend judging with that model in this process.
rewards/ cannot load a model (that is rl/'s), so the layer above passes one to the scorer:
compute_rewards(..., local_judge=EngineJudge) with EngineJudge from rl/rollout/judge.py."""


class LocalJudgeMissing(ValueError):
    """A recipe names a local judge model (backend hf or vllm) but the scorer was given no
    local_judge factory: a setup error, raised by compute_rewards rather than scored as zeros."""


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------


class HTTPJudge:
    """An OpenAI-compatible chat completions endpoint."""

    def __init__(self, url: str, model: str, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 api_key: str | None = None, cache_size: int = 10000, top_logprobs: int = 20):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"judge url {url!r} must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        self.url = url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.retries, self.backoff, self.api_key = model, timeout, retries, backoff, api_key
        self.top_logprobs = top_logprobs
        self._cache: OrderedDict[str, list[JudgeOutput]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def complete(self, prompt: str, n: int, *, labels: tuple[str, ...] = (), temperature: float = 0.0,
                 max_tokens: int = 16) -> list[JudgeOutput]:
        # greedy samples are all the same, and vLLM refuses n > 1 at temperature 0: ask for one, repeat it
        repeat = n if temperature == 0 else 1
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "n": n // repeat,
                "temperature": temperature, "max_tokens": max_tokens}
        if labels:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if key in self._cache:
                JUDGE_STATS.add("cache_hits")
                self._cache.move_to_end(key)
                return self._cache[key] * repeat
        data = self._post(body)
        try:
            outputs = [self._parse_choice(c, labels) for c in data["choices"]]
        except (KeyError, TypeError, IndexError) as e:
            raise JudgeError(f"judge endpoint {self.url} answered without OpenAI-format choices ({e!r}): "
                             f"{json.dumps(data)[:300]}") from None
        with self._lock:
            self._cache[key] = outputs
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return outputs * repeat

    def complete_batch(self, requests: list[tuple[str, int]], *, labels: tuple[str, ...] = (),
                       temperature: float = 0.0, max_tokens: int = 16,
                       workers: int = 1) -> list[list[JudgeOutput] | Exception]:
        """One HTTP request per (prompt, n), `workers` in flight at once (the server batches them)."""

        def one(request: tuple[str, int]) -> list[JudgeOutput] | Exception:
            try:
                return self.complete(request[0], request[1], labels=labels, temperature=temperature,
                                     max_tokens=max_tokens)
            except Exception as e:  # noqa: BLE001  (each completion's error is its own)
                return e

        if workers > 1 and len(requests) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(workers, len(requests)), thread_name_prefix="judge-http") as pool:
                return list(pool.map(one, requests))
        return [one(r) for r in requests]

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            JUDGE_STATS.add("requests")
            request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode(errors="replace")
                last = f"HTTP {e.code}: {detail}"
                if e.code != 429 and e.code < 500:  # the request itself is wrong: retrying will not help
                    raise JudgeError(f"judge endpoint {self.url} refused the request ({last})") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except json.JSONDecodeError as e:
                last = f"not JSON ({e})"
        raise JudgeError(f"judge endpoint {self.url} unreachable after {self.retries + 1} attempts: {last}")

    @staticmethod
    def _parse_choice(choice: dict, labels: tuple[str, ...]) -> JudgeOutput:
        text = choice["message"]["content"] or ""
        lp = (choice.get("logprobs") or {}).get("content") if labels else None
        if not lp:
            return JudgeOutput(text)
        top = lp[0].get("top_logprobs") or [{"token": lp[0]["token"], "logprob": lp[0]["logprob"]}]
        return JudgeOutput(text, label_logprobs({t["token"]: t["logprob"] for t in top}, labels))


def label_logprobs(token_logprobs: dict[str, float], labels: tuple[str, ...]) -> dict[str, float]:
    """Per label, the log of the summed probability of first tokens that begin it (the whole label,
    or a prefix of it that begins no other label: "y" for yes where a tokenizer splits the word;
    case and surrounding space ignored); -inf when none does."""
    out = {}
    for label in labels:
        others = [other for other in labels if other != label]

        def begins(tok: str, label=label, others=others) -> bool:
            t = tok.strip().lower()
            return bool(t) and label.startswith(t) and not any(o.startswith(t) for o in others)

        ps = [math.exp(lp) for tok, lp in token_logprobs.items() if begins(tok)]
        out[label] = math.log(sum(ps)) if ps and sum(ps) > 0 else -math.inf
    return out


_clients: dict[tuple, JudgeBackend] = {}
_clients_lock = threading.Lock()


def judge_client(backend: str, url: str, model: str = "", timeout: float = 30.0, retries: int = 3,
                 top_logprobs: int = 20, *, local_judge: LocalJudgeFactory | None = None) -> JudgeBackend:
    """One backend per (backend, url, model, limits) over http, per (backend, url, factory) for a
    local model, kept for the process's life (a local model loads once). A local model (backend hf
    or vllm) is built by `local_judge(url, backend)`; without a factory, LocalJudgeMissing."""
    if backend in ("hf", "vllm"):
        if local_judge is None:
            raise LocalJudgeMissing(
                f"reward llm_judge: backend '{backend}' judges with the local model at url={url!r} "
                f"(reward.functions[].args backend/url), which rewards/ cannot load itself; the scorer needs "
                f"a local_judge factory: pass local_judge=EngineJudge (rl/rollout/judge.py) to compute_rewards "
                f"(the trainer and `asymptote verifier-report` do), or serve the model (vllm serve) and set "
                f"backend: http with url: http://HOST:PORT/v1")
        key: tuple = (backend, url, local_judge)
    elif backend == "http":
        key = (backend, url, model, timeout, retries, top_logprobs)
    else:
        raise ValueError(f"unknown judge backend '{backend}'; allowed: http, hf, vllm")
    with _clients_lock:
        if key not in _clients:
            if backend == "http":
                import os

                _clients[key] = HTTPJudge(url, model, timeout=timeout, retries=retries, top_logprobs=top_logprobs,
                                          api_key=os.environ.get("ASYMPTOTE_JUDGE_API_KEY"))
            else:
                _clients[key] = local_judge(url, backend)
        return _clients[key]


# --------------------------------------------------------------------------------------------
# Parsing and scoring
# --------------------------------------------------------------------------------------------

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_SCORE = re.compile(r"(?<![\d.])(10|[1-9])(?:\s*/\s*10)?(?![\d.])")
_AB = re.compile(r"\b(A|B|tie)\b", re.IGNORECASE)


def parse_verdict(out: JudgeOutput) -> float | None:
    """P(yes) from the label log-probs when they hold yes or no, else 1/0 from the first yes/no of
    the text, else None."""
    lp = out.label_logprobs
    if lp and (math.isfinite(lp.get("yes", -math.inf)) or math.isfinite(lp.get("no", -math.inf))):
        y, n = math.exp(lp.get("yes", -math.inf)), math.exp(lp.get("no", -math.inf))
        return y / (y + n)
    m = _YES_NO.search(out.text)
    return None if m is None else float(m.group(1).lower() == "yes")


def parse_score(out: JudgeOutput) -> float | None:
    """The first standalone integer 1-10 of the text (also "7/10"), as (s - 1) / 9; else None."""
    m = _SCORE.search(out.text)
    return None if m is None else (int(m.group(1)) - 1) / 9


def parse_preference(out: JudgeOutput) -> str | None:
    """'A', 'B' or 'tie' (the first one the text names), else None."""
    m = _AB.search(out.text.strip())
    if m is None:
        return None
    return m.group(1).lower() if m.group(1).lower() == "tie" else m.group(1).upper()


def aggregate_scores(scores: list[float], how: str) -> float:
    if how == "mean":
        return sum(scores) / len(scores)
    if how == "vote":
        yes = sum(s >= 0.5 for s in scores)
        no = len(scores) - yes
        return 1.0 if yes > no else 0.0 if no > yes else 0.5
    raise ValueError(f"unknown aggregate '{how}'; allowed: mean, vote")


def llm_judge(completion: str, prompt: Prompt, *, backend: Literal["http", "hf", "vllm"] = "http",
              url: str = "http://127.0.0.1:8000/v1", model: str = "judge",
              template: Literal["verdict", "score", "pairwise"] = "verdict",
              samples: Annotated[int, Field(ge=1)] = 1, aggregate: Literal["mean", "vote"] = "mean",
              temperature: Annotated[float, Field(ge=0.0)] = 0.0, max_tokens: Annotated[int, Field(ge=1)] = 16,
              criteria: str = "", use_reference: bool = True, use_logprobs: bool = True,
              top_logprobs: Annotated[int, Field(ge=1)] = 20, timeout_seconds: Annotated[float, Field(gt=0.0)] = 30.0,
              retries: Annotated[int, Field(ge=0)] = 3) -> float:
    """An LLM judge's score in [0, 1] (see the module docstring for templates and backends): url is
    the endpoint's base URL (http) or a model directory (hf, vllm); criteria is added to the
    question (e.g. 'Judge only the final answer.'); use_reference shows prompt.answer as the
    reference (verdict, score; pairwise always compares against it); use_logprobs: false reads
    verdicts from the text only (for endpoints without log-probs); top_logprobs: first tokens an
    http endpoint reports (vLLM allows 20 unless started with --max-logprobs)."""
    result = llm_judge_batch([completion], [prompt], backend=backend, url=url, model=model, template=template,
                             samples=samples, aggregate=aggregate, temperature=temperature, max_tokens=max_tokens,
                             criteria=criteria, use_reference=use_reference, use_logprobs=use_logprobs,
                             top_logprobs=top_logprobs, timeout_seconds=timeout_seconds, retries=retries)[0]
    if isinstance(result, Exception):
        raise result
    return result


def llm_judge_batch(completions: list[str], prompts: list[Prompt], *, workers: int = 1, backend: str = "http",
                    url: str = "http://127.0.0.1:8000/v1", model: str = "judge", template: str = "verdict",
                    samples: int = 1, aggregate: str = "mean", temperature: float = 0.0, max_tokens: int = 16,
                    criteria: str = "", use_reference: bool = True, use_logprobs: bool = True,
                    top_logprobs: int = 20, timeout_seconds: float = 30.0, retries: int = 3,
                    local_judge: LocalJudgeFactory | None = None) -> list[float | Exception]:
    """llm_judge over a batch (the arguments are llm_judge's, validated by the recipe): every
    completion's judge requests go to the backend at once (one engine.generate call for the engine
    backends; `workers` concurrent requests over http). Per completion: its score, or the error
    that stopped it (unreachable, nothing parsed). local_judge builds the backend of a local model
    (backend hf or vllm; see LocalJudgeFactory): not a recipe argument, compute_rewards passes its own."""
    client = judge_client(backend, url, model, timeout_seconds, retries, top_logprobs, local_judge=local_judge)
    crit = f"{criteria.strip()}\n" if criteria.strip() else ""
    # (judge prompt, n, completion index, completion shown as A (pairwise) or None)
    requests: list[tuple[str, int, int, bool | None]] = []
    results: list[float | Exception | None] = [None] * len(completions)
    for i, (completion, prompt) in enumerate(zip(completions, prompts, strict=True)):
        question = prompt.messages[-1]["content"] if prompt.messages else ""
        if template == "pairwise":
            if not prompt.answer:
                results[i] = ValueError(f"pairwise judging compares against the reference answer; "
                                        f"prompt {prompt.id} has none")
                continue
            first = (samples + 1) // 2
            for n, completion_is_a in ((first, True), (samples - first, False)):
                if n == 0:
                    continue
                a, b = (completion, prompt.answer) if completion_is_a else (prompt.answer, completion)
                text = TEMPLATES["pairwise"].replace("{criteria}", crit).replace("{question}", question)
                requests.append((text.replace("{a}", a).replace("{b}", b), n, i, completion_is_a))
        else:
            reference = f"Reference answer:\n{prompt.answer}\n\n" if use_reference and prompt.answer else ""
            text = TEMPLATES[template].replace("{criteria}", crit).replace("{question}", question)
            requests.append((text.replace("{reference}", reference).replace("{response}", completion), samples, i, None))
    labels = ("yes", "no") if template == "verdict" and use_logprobs else ()
    answers = client.complete_batch([(text, n) for text, n, _, _ in requests], labels=labels,
                                    temperature=temperature, max_tokens=max_tokens, workers=workers)
    texts: dict[int, list[str]] = {}
    scores: dict[int, list[float]] = {}
    for (_, _, i, completion_is_a), outs in zip(requests, answers):
        if isinstance(outs, Exception):
            results[i] = outs
            continue
        for out in outs:
            texts.setdefault(i, []).append(out.text)
            if template == "pairwise":
                pref = parse_preference(out)
                score = None if pref is None else 0.5 if pref == "tie" else float((pref == "A") == completion_is_a)
            else:
                score = (parse_verdict if template == "verdict" else parse_score)(out)
            if score is not None:
                scores.setdefault(i, []).append(score)
    for i in range(len(completions)):
        if results[i] is not None:
            continue
        read, parsed = texts.get(i, []), scores.get(i, [])
        JUDGE_STATS.add("samples", len(read))
        JUDGE_STATS.add("unparseable", len(read) - len(parsed))
        if not parsed:
            results[i] = JudgeError(f"none of the judge's {len(read)} outputs parses as a {template} answer; "
                                    f"first: {(read[0] if read else '')[:200]!r}")
        else:
            results[i] = aggregate_scores(parsed, aggregate)
    return results  # type: ignore[return-value]


llm_judge.stats = JUDGE_STATS  # type: ignore[attr-defined]  (compute_rewards logs the batch's counts)
llm_judge.batch = llm_judge_batch  # type: ignore[attr-defined]  (compute_rewards scores a batch at once)
