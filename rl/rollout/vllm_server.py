"""A vLLM rollout server: `python -m rl.rollout.vllm_server --model DIR --port PORT`.

One process, one `VLLMGenerator` (rl/rollout/vllm.py), a small threaded HTTP server on 127.0.0.1
(nothing else is needed, and nothing outside the machine should reach it). Token ids in, token
ids, log-probs and per-token policy versions out. Requests are served concurrently: a weight
update arriving while a generation runs lands between two of its decoding steps (PipelineRL's
in-flight update), and the tokens after it carry the new version.

Endpoints (JSON unless stated):
    GET  /health                       {"status": "ok", "version": v, "rows_served": n}
    POST /generate                     {"rows": [[ids]], "seeds": [..], "params": {SamplingParams}}
                                       -> {"results": [{token_ids, logprobs, policy_versions, finish_reason}]}
    POST /weights/bucket               body: a safetensors file of one bucket of (name -> tensor);
                                       staged in memory
    POST /weights/commit               {"version": v}: loads every staged bucket at once (generation
                                       never sees half an update) -> {"loaded": n}
    POST /weights/nccl/init            {"host", "port", "world_size", "rank"}: join the trainer's NCCL
                                       group (GPU only; TRL's init_communicator)
    POST /weights/nccl/bucket          {"names", "shapes", "dtypes"}: receive one bucket by NCCL broadcast
                                       from the trainer (rank 0), staged like /weights/bucket

The HTTP route is how weights travel on CPU (and works on GPU, through host memory). The NCCL route
follows TRL's vllm-serve (StatelessProcessGroup + PyNcclCommunicator, one broadcast per tensor of a
bucket); it needs CUDA and is untested here (docs/engines.md).
"""

from __future__ import annotations

from pathlib import Path

import argparse
import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from rl.rollout.base import SamplingParams
from rl.rollout.vllm import VLLMGenerator

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class RolloutServer:
    """The state behind the HTTP handlers: the generator and the staged weight buckets."""

    def __init__(self, generator: VLLMGenerator):
        self.generator = generator
        self.staged: list[list[tuple[str, torch.Tensor]]] = []
        self.stage_lock = threading.Lock()
        self.rows_served = 0
        self.nccl = None  # (PyNcclCommunicator, device) once /weights/nccl/init ran

    def health(self, _body: dict) -> dict:
        return {"status": "ok", "version": self.generator.version, "rows_served": self.rows_served}

    def generate(self, body: dict) -> dict:
        params = SamplingParams(**body["params"])
        results = self.generator.generate(body["rows"], params, body["seeds"])
        self.rows_served += len(body["rows"])
        return {"results": [asdict(r) for r in results]}

    def stage(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        with self.stage_lock:
            self.staged.append(bucket)

    def commit(self, body: dict) -> dict:
        with self.stage_lock:
            staged, self.staged = self.staged, []
        return {"loaded": self.generator.load_weights(iter(staged), int(body["version"]))}

    def nccl_init(self, body: dict) -> dict:
        """Join the trainer's NCCL group as `rank` (the trainer is rank 0), as TRL's vllm-serve does."""
        if not torch.cuda.is_available():
            raise RuntimeError("weight_transport nccl needs CUDA on the server; use weight_transport: http")
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        pg = StatelessProcessGroup.create(host=body["host"], port=int(body["port"]), rank=int(body["rank"]),
                                          world_size=int(body["world_size"]))
        device = torch.device("cuda", torch.cuda.current_device())
        self.nccl = (PyNcclCommunicator(pg, device=device), device)
        return {"status": "ok"}

    def nccl_bucket(self, body: dict) -> dict:
        """Receive one bucket by broadcast: the trainer posts this, then broadcasts each tensor."""
        if self.nccl is None:
            raise RuntimeError("POST /weights/nccl/init first")
        comm, device = self.nccl
        bucket = []
        for name, shape, dtype in zip(body["names"], body["shapes"], body["dtypes"]):
            t = torch.empty(shape, dtype=DTYPES[dtype], device=device)
            comm.broadcast(t, src=0)
            bucket.append((name, t))
        comm.group.barrier()
        self.stage(bucket)
        return {"received": len(bucket)}


def make_handler(server: RolloutServer):
    routes = {
        ("GET", "/health"): server.health,
        ("POST", "/generate"): server.generate,
        ("POST", "/weights/commit"): server.commit,
        ("POST", "/weights/nccl/init"): server.nccl_init,
        ("POST", "/weights/nccl/bucket"): server.nccl_bucket,
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, code: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                if method == "POST" and self.path == "/weights/bucket":
                    from safetensors.torch import load

                    tensors = load(raw)
                    server.stage(list(tensors.items()))
                    return self._reply(200, {"staged": len(tensors)})
                route = routes.get((method, self.path))
                if route is None:
                    return self._reply(404, {"error": f"no route {method} {self.path}"})
                self._reply(200, route(json.loads(raw) if raw else {}))
            except Exception as e:  # the client raises with this message and the server's URL
                self._reply(500, {"error": f"{type(e).__name__}: {e}"})

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def log_message(self, *args) -> None:  # quiet: the trainer's log is the record
            pass

    return Handler


def model_eos_ids(model_path: str | Path) -> list[int]:
    """The end-of-sequence ids of a model directory: its generation config's and its tokenizer's
    (what rl.rollout.hf.eos_token_ids takes from a loaded model), without loading the weights."""
    from transformers import GenerationConfig

    from rl.models import load_tokenizer

    try:
        ids = GenerationConfig.from_pretrained(model_path).eos_token_id
    except OSError:  # no generation_config.json
        ids = None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    eos = load_tokenizer(model_path).eos_token_id
    if eos is not None and eos not in ids:
        ids.append(eos)
    if not ids:
        raise ValueError(f"{model_path}: neither its generation config nor its tokenizer defines an end-of-sequence "
                         "token; pass --eos-ids")
    return ids


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Asymptote's vLLM rollout server (loopback HTTP).")
    p.add_argument("--model", required=True, help="Hugging Face model directory or hub id")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="0: any free port, written to --port-file")
    p.add_argument("--port-file", default=None,
                   help="write the port served on here once it is bound (how a launcher learns a --port 0 port)")
    p.add_argument("--eos-ids", default=None,
                   help="comma-separated token ids that end a completion (default: the model directory's "
                        "generation config and tokenizer, as the trainer's engines use)")
    p.add_argument("--tensor-parallel-size", type=int, default=1)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--kv-cache-gb", type=int, default=1)
    p.add_argument("--max-model-len", type=int, default=1024)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--no-enforce-eager", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    # Bind before vLLM starts: vLLM picks free ports of its own while it loads, and a port chosen
    # by the launcher but not yet bound could be taken meanwhile (CI saw "Address already in use").
    # Until the engine is up, a connection waits in the listen backlog.
    httpd = ThreadingHTTPServer((a.host, a.port), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    if a.port_file:
        tmp = Path(a.port_file).with_suffix(".tmp")
        tmp.write_text(str(port))
        tmp.replace(a.port_file)
    from rl.models import resolve_model_path

    a.model = str(resolve_model_path(a.model))  # a hub id: its snapshot in the Hugging Face cache
    eos_ids = [int(x) for x in a.eos_ids.split(",")] if a.eos_ids else model_eos_ids(a.model)
    generator = VLLMGenerator(
        a.model, eos_ids, dtype=a.dtype, gpu_memory_utilization=a.gpu_memory_utilization,
        enforce_eager=not a.no_enforce_eager, max_model_len=a.max_model_len, max_num_seqs=a.max_num_seqs,
        kv_cache_gb=a.kv_cache_gb, seed=a.seed, tensor_parallel_size=a.tensor_parallel_size,
    )
    httpd.RequestHandlerClass = make_handler(RolloutServer(generator))
    print(f"[vllm_server] serving {a.model} on http://{a.host}:{port}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        generator.close()


if __name__ == "__main__":
    main()
