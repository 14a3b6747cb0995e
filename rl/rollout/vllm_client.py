"""The `vllm-server` engine: vLLM server processes (rl/rollout/vllm_server.py), launched on
127.0.0.1 by the trainer or attached by URL.

Requests are spread over the servers: a generate call splits its rows into one chunk per server
and sends each chunk to the server with the fewest rows in flight (several callers, e.g. the async
generator and evaluation, share the servers the same way). Every request has a timeout and is
retried with backoff on connection errors and timeouts; a server that still fails stops the run
with an error naming its URL (and, for a server this engine launched, the end of its log).

Weights go to every server after each optimizer step, in buckets of about `bucket_mb` MB (never
one request per parameter), then a commit makes the server load them all between two decoding
steps. Over HTTP a bucket is a safetensors file (the CPU route; also works on GPU through host
memory); with weight_transport nccl, a bucket's metadata goes over HTTP and its tensors by NCCL
broadcast from the trainer's GPU, as TRL's VLLMClient does (untested here: no GPU).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import torch

from rl.rollout.base import Completion, SamplingParams
from rl.rollout.vllm import GenResult, draw_seeds, to_completion
from rl.weights import weight_buckets


TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE",
                "GROUP_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
                "TORCHELASTIC_MAX_RESTARTS", "TORCH_NCCL_ASYNC_ERROR_HANDLING")
"""Set by torchrun for a training rank; stripped from the environment of the servers a rank starts."""


class ServerError(RuntimeError):
    """A vLLM server failed; the message names its URL."""


class VLLMServerEngine:
    def __init__(self, model_path: str | Path, tokenizer, eos_ids: list[int], cfg, bucket_mb: float = 256.0,
                 server_options: dict | None = None):
        self.tokenizer, self.eos_ids, self.cfg, self.bucket_mb = tokenizer, list(eos_ids), cfg, bucket_mb
        self.version = 0
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}  # url -> the server launched for it
        self._started: list[subprocess.Popen] = []  # every launched server, bound or not (close() stops them)
        self._inflight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._nccl = None
        self._pool = None
        try:
            if cfg.urls:
                self.urls = [u.rstrip("/") for u in cfg.urls]
            else:
                self.urls = self._launch(model_path, server_options or {})
            self._inflight = {u: 0 for u in self.urls}
            self._pool = ThreadPoolExecutor(max_workers=max(4, 2 * len(self.urls)))
            self._wait_healthy(cfg.startup_timeout_s if self.procs else cfg.timeout_s)
            if cfg.weight_transport == "nccl":
                self._init_nccl()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------------------------------
    # Servers: launch, health
    # ---------------------------------------------------------------------------------------

    def _launch(self, model_path, options: dict) -> list[str]:
        """Start cfg.num_servers servers and return their URLs. Without engine.server.port each server
        binds a free port itself and writes it to a file beside its log (a port picked here and bound
        there later could be taken in between, by vLLM's own ports among others)."""
        started = []
        for i in range(self.cfg.num_servers):
            log = Path(tempfile.mkdtemp(prefix="vllm-server-")) / "server.log"
            port_file = log.with_name("port")
            cmd = [sys.executable, "-m", "rl.rollout.vllm_server", "--model", str(model_path),
                   "--port", str(self.cfg.port + i if self.cfg.port else 0), "--port-file", str(port_file),
                   "--eos-ids", ",".join(map(str, self.eos_ids))]
            for key, flag in (("dtype", "--dtype"), ("gpu_memory_utilization", "--gpu-memory-utilization"),
                              ("kv_cache_gb", "--kv-cache-gb"), ("max_model_len", "--max-model-len"),
                              ("max_num_seqs", "--max-num-seqs"), ("seed", "--seed")):
                if key in options:
                    cmd += [flag, str(options[key])]
            if options.get("enforce_eager") is False:
                cmd.append("--no-enforce-eager")
            root = str(Path(__file__).resolve().parents[2])  # the server imports this checkout's rl
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
            for name in TORCHRUN_ENV:  # a trainer rank's torchrun variables would join the server to its group
                env.pop(name, None)
            with open(log, "wb") as f:
                proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
            self._started.append(proc)
            started.append((proc, log, port_file))
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        urls = []
        for i, (proc, log, port_file) in enumerate(started):
            while not port_file.exists():
                text = None
                if proc.poll() is not None:
                    text = f"vllm server {i} exited with code {proc.returncode} before binding its port"
                elif time.monotonic() > deadline:
                    text = f"vllm server {i} did not bind a port within {self.cfg.startup_timeout_s:.0f} s"
                if text:
                    raise ServerError(text + _tail_of(log))
                time.sleep(0.1)
            url = f"http://127.0.0.1:{int(port_file.read_text())}"
            self.procs[url] = (proc, log)
            urls.append(url)
        return urls

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for url in self.urls:
            while True:
                proc = self.procs.get(url, (None, None))[0]
                if proc is not None and proc.poll() is not None:
                    raise ServerError(f"vllm server {url} exited with code {proc.returncode} while starting"
                                      f"{self._log_tail(url)}")
                try:
                    self._request(url, "GET", "/health", timeout=5.0, retries=0)
                    break
                except ServerError:
                    if time.monotonic() > deadline:
                        raise ServerError(f"vllm server {url} did not answer /health within {timeout_s:.0f} s"
                                          f"{self._log_tail(url)}") from None
                    time.sleep(0.5)

    def health(self) -> dict[str, dict]:
        """Every server's /health answer; raises ServerError naming the first that fails."""
        return {u: self._request(u, "GET", "/health", timeout=10.0) for u in self.urls}

    def _log_tail(self, url: str) -> str:
        return _tail_of(self.procs[url][1]) if url in self.procs else ""

    # ---------------------------------------------------------------------------------------
    # Requests: timeouts, retries, errors that name the server
    # ---------------------------------------------------------------------------------------

    def _request(self, url: str, method: str, path: str, body: dict | bytes | None = None,
                 timeout: float | None = None, retries: int | None = None) -> dict:
        timeout = self.cfg.timeout_s if timeout is None else timeout
        retries = self.cfg.retries if retries is None else retries
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/octet-stream" if isinstance(body, bytes) else "application/json"}
        last = None
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))
            try:
                req = urllib.request.Request(url + path, data=data, method=method, headers=headers)
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:  # the server answered: an error in the request, not retried
                detail = e.read().decode(errors="replace")
                try:
                    detail = json.loads(detail).get("error", detail)
                except ValueError:
                    pass
                raise ServerError(f"vllm server {url} failed {method} {path}: HTTP {e.code}: {detail}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as e:
                last = e
        proc = self.procs.get(url, (None, None))[0]
        state = f" (its process exited with code {proc.returncode})" if proc is not None and proc.poll() is not None else ""
        raise ServerError(f"vllm server {url} failed {method} {path} after {retries + 1} attempt(s){state}: "
                          f"{getattr(last, 'reason', last)}{self._log_tail(url) if state else ''}")

    # ---------------------------------------------------------------------------------------
    # The Engine protocol
    # ---------------------------------------------------------------------------------------

    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        rows = [ids for ids in prompt_ids for _ in range(params.n)]
        seeds = draw_seeds(len(rows))
        k = min(len(self.urls), len(rows)) or 1
        bounds = [round(i * len(rows) / k) for i in range(k + 1)]
        futures = []
        for a, b in zip(bounds, bounds[1:]):
            url = self._acquire(b - a)
            futures.append(self._pool.submit(self._generate_chunk, url, rows[a:b], seeds[a:b], params))
        results = [r for f in futures for r in f.result()]
        flat = [to_completion(r, res, self.tokenizer) for r, res in zip(rows, results)]
        return [flat[i * params.n : (i + 1) * params.n] for i in range(len(prompt_ids))]

    def _acquire(self, n: int) -> str:
        """The server with the fewest rows in flight; counts `n` more on it."""
        with self._lock:
            url = min(self.urls, key=lambda u: self._inflight[u])
            self._inflight[url] += n
            return url

    def _generate_chunk(self, url: str, rows, seeds, params: SamplingParams) -> list[GenResult]:
        try:
            out = self._request(url, "POST", "/generate", {"rows": rows, "seeds": seeds, "params": asdict(params)})
            return [GenResult(**r) for r in out["results"]]
        finally:
            with self._lock:
                self._inflight[url] -= len(rows)

    def update_weights(self, model: torch.nn.Module, version: int) -> None:
        """Push the model's weights to every server in buckets, then commit them as `version`."""
        from safetensors.torch import save

        for bucket in weight_buckets(model, self.bucket_mb):
            if self._nccl is not None:
                self._push_nccl(bucket)
                continue
            data = save({name: t.detach().contiguous().cpu() for name, t in bucket})
            for f in [self._pool.submit(self._request, u, "POST", "/weights/bucket", data) for u in self.urls]:
                f.result()
        for f in [self._pool.submit(self._request, u, "POST", "/weights/commit", {"version": version}) for u in self.urls]:
            f.result()
        self.version = version

    # ---------------------------------------------------------------------------------------
    # NCCL (GPU): TRL's init_communicator / update_named_param, per bucket. Untested here.
    # ---------------------------------------------------------------------------------------

    def _init_nccl(self) -> None:
        if not torch.cuda.is_available():
            raise ServerError("engine.server.weight_transport nccl needs CUDA in the trainer; use http")
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        port, world = _free_port(), len(self.urls) + 1
        joins = [self._pool.submit(self._request, u, "POST", "/weights/nccl/init",
                                   {"host": "127.0.0.1", "port": port, "world_size": world, "rank": i + 1})
                 for i, u in enumerate(self.urls)]
        pg = StatelessProcessGroup.create(host="127.0.0.1", port=port, rank=0, world_size=world)
        self._nccl = PyNcclCommunicator(pg, device=torch.device("cuda", torch.cuda.current_device()))
        for f in joins:
            f.result()

    def _push_nccl(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        meta = {"names": [n for n, _ in bucket], "shapes": [list(t.shape) for _, t in bucket],
                "dtypes": [str(t.dtype).removeprefix("torch.") for _, t in bucket]}
        posted = [self._pool.submit(self._request, u, "POST", "/weights/nccl/bucket", meta) for u in self.urls]
        for _, t in bucket:
            self._nccl.broadcast(t.detach().contiguous().cuda(), src=0)
        self._nccl.group.barrier()
        for f in posted:
            f.result()

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for proc in self._started:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        self._started.clear()


def _tail_of(log: Path, n: int = 2000) -> str:
    return f"; its log ({log}) ends:\n{log.read_text(errors='replace')[-n:]}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
