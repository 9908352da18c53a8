"""What the bundled local model is shown: the prompt llama-cpp-python's server renders.

Sends the seed report through the real client path (openai + instructor, tool
calling) to a crafted loopback server that only records the request body, then
renders that request the way llama-cpp-python's server does for the bundled GGUF:
the GGUF carries no ``tokenizer.chat_template``, so the server falls back to its
``llama-2`` chat format, which takes the messages and ignores ``tools`` (the tool's
schema only becomes the grammar). Prints, per task, with and without
``--schema-in-prompt``: the rendered prompt's tokens (the model's own tokenizer),
the tokens of the tool definition sent beside it, and whether the field
descriptions reach the model. Needs the ``local`` extra. Run:
``python bench/rendered_prompt.py``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from caseextract.llm.local import bundled_model_path, rendered_prompt
from caseextract.pipeline.runner import Runner
from caseextract.store import ResultWriter
from caseextract.tasks import default_task
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "cases" / "seed-vertebroplasty-cement-leakage.txt"
CEMENT = "caseextract.tasks:CementLeakage"
# task → (prompt set, schema, a field description to look for, a crafted empty answer)
TASKS = {
    "cement_leakage": ("cement_leakage", CEMENT, "Where the cement went.", {}),
    "case_report": ("case_report", None, "One entry per patient described.", {"article": {}}),
}


def request_for(task_name: str, schema_in_prompt: bool, tmp: Path) -> dict:
    """The request body the client sends (captured by a crafted server; its answer is crafted)."""
    from caseextract.llm import ModelClient, ModelSettings

    prompt_set, schema, _, answer = TASKS[task_name]
    task = default_task(prompt_set, schema, schema_in_prompt)
    reply = Reply(body=crafted_tool_completion(answer, tool_name=task.response_model.__name__))
    with FakeOpenAIServer(default=reply) as server:
        settings = ModelSettings(model="gemma-3-270m", base_url=server.base_url, reasks=0)
        client = ModelClient(settings)
        with ResultWriter(tmp / "r.jsonl", resume=False) as writer:
            asyncio.run(Runner(task, client, writer, 1).run([SEED]))
        return server.requests[0]


def main() -> int:
    import tempfile

    from llama_cpp import Llama

    llm = Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    template = llm.metadata.get("tokenizer.chat_template")
    print(f"model: {bundled_model_path().name}; chat template in the GGUF: {bool(template)}")
    print("| task | schema in prompt | rendered prompt tokens | tool definition tokens (not shown) "
          "| a field description reaches the model |")  # fmt: skip
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (_, _, probe, _) in TASKS.items():
            for in_prompt in (False, True):
                payload = request_for(name, in_prompt, Path(tmp))
                prompt = rendered_prompt(payload)
                tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
                tool = json.dumps(payload["tools"])
                tool_tokens = len(llm.tokenize(tool.encode("utf-8"), add_bos=False))
                print(f"| {name} | {'yes' if in_prompt else 'no'} | {tokens:,} | "
                      f"{tool_tokens:,} | {'yes' if probe in prompt else 'no'} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
