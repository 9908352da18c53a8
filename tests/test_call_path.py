"""One call path: ``ModelClient.extract`` is a thin blocking wrapper over ``aextract``,
and each call owns its state (``llm.call.Call``).

Both run against a real HTTP server on 127.0.0.1 answering crafted replies (a
crafted re-ask scenario: an ungrounded answer, then a good one), and must send the
same bytes and hand back the same extraction, statistics and grounded facts.
"""

import asyncio
import threading

import pytest
from caseextract.errors import NonRetryableError
from caseextract.schema import CaseReport
from caseextract.testing import FakeOpenAIServer, Reply, crafted_error, crafted_tool_completion

from helpers import CRAFTED_SEED_ANSWER, client_for, crafted_answer

SOURCE = (
    "An 87-year-old female patient. The patient could walk with no neurologic deficit. "
    "Vertebroplasty for L1 was performed under intravenous sedation; then an emergent "
    "laminectomy from T12 to L2. Intradural cement leakage after vertebroplasty"
)
MESSAGES = [{"role": "system", "content": "extract"}, {"role": "user", "content": SOURCE}]
UNGROUNDED = crafted_answer(
    findings=[{"name": "fever", "assertion": "present", "evidence": ["a quote not in the text"]}]
)
SCRIPT = [
    Reply(body=crafted_tool_completion(UNGROUNDED)),
    Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER)),
]


def _comparable(extraction):
    stats = extraction.stats.to_dict()
    stats.pop("latency_s")
    return (
        extraction.value.model_dump(),
        stats,
        [f.to_dict() for f in extraction.facts],
    )


def test_sync_and_async_send_the_same_requests_and_return_the_same_result():
    with FakeOpenAIServer(list(SCRIPT)) as server:
        client = client_for(server.base_url)
        sync = client.extract(MESSAGES, CaseReport, source_text=SOURCE)
        client.close()
        sync_requests = list(server.raw_requests)
    with FakeOpenAIServer(list(SCRIPT)) as server:

        async def go():
            client = client_for(server.base_url)
            try:
                return await client.aextract(MESSAGES, CaseReport, source_text=SOURCE)
            finally:
                await client.aclose()

        asyn = asyncio.run(go())
        async_requests = list(server.raw_requests)
    assert len(sync_requests) == 2  # the re-ask happened on both paths
    assert sync_requests == async_requests
    assert _comparable(sync) == _comparable(asyn)
    assert sync.stats.attempts == 2


def test_the_wrapper_reuses_one_loop_and_works_inside_a_running_loop():
    good = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))
    with FakeOpenAIServer(default=good) as server:
        client = client_for(server.base_url)
        first = client.extract(MESSAGES, CaseReport)  # pooled connection kept …
        second = client.extract(MESSAGES, CaseReport)  # … and reused on the same loop

        async def inside_a_loop():
            return client.extract(MESSAGES, CaseReport)  # blocking call from async code

        third = asyncio.run(inside_a_loop())
        client.close()
    assert first.value == second.value == third.value
    assert not any(t.name == "caseextract-client" for t in threading.enumerate())


def test_errors_come_back_through_the_wrapper_as_they_are():
    with FakeOpenAIServer([crafted_error(401, "bad key")]) as server:
        client = client_for(server.base_url)
        with pytest.raises(NonRetryableError, match="credentials") as caught:
            client.extract(MESSAGES, CaseReport)
        client.close()
    assert caught.value.context["http_requests"] == 1


def test_concurrent_calls_keep_their_own_statistics_and_leave_no_active_call():
    """Each call owns its ``Call`` (stats, facts): two at once on one client never mix."""
    from caseextract.llm.call import ACTIVE

    replies = {"reask": [Reply(body=crafted_tool_completion(UNGROUNDED))]}
    good = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))

    def responder(payload, _index):
        user = next(m["content"] for m in payload["messages"] if m["role"] == "user")
        queue = replies.get("reask") if user.startswith("re-ask") else None
        return queue.pop(0) if queue else good

    with FakeOpenAIServer(responder) as server:

        async def go():
            client = client_for(server.base_url)
            try:
                reasked = [{"role": "user", "content": "re-ask " + SOURCE}]
                once = [{"role": "user", "content": "once " + SOURCE}]
                results = await asyncio.gather(
                    client.aextract(reasked, CaseReport, source_text=SOURCE),
                    client.aextract(once, CaseReport, source_text=SOURCE),
                )
                return results, ACTIVE.get()
            finally:
                await client.aclose()

        (reasked, once), active = asyncio.run(go())
    assert (reasked.stats.attempts, reasked.stats.http_requests) == (2, 2)
    assert (once.stats.attempts, once.stats.http_requests) == (1, 1)
    assert reasked.stats is not once.stats and active is None


def test_an_interrupt_in_the_callers_thread_stops_the_call_too():
    """Ctrl-C (here a crafted signal) while ``extract`` waits cancels the call on the
    client's loop, rather than leaving it running behind the caller's back."""
    import signal

    class Interrupted(Exception):
        pass

    def interrupt(*_):
        raise Interrupted

    slow = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER), delay=5.0)
    with FakeOpenAIServer(default=slow) as server:
        client = client_for(server.base_url, timeout=10.0)
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        try:
            with pytest.raises(Interrupted):
                client.extract(MESSAGES, CaseReport)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

        async def pending():
            await asyncio.sleep(0.5)  # time for a cancelled call to unwind
            return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

        assert client._portal.run(pending()) == []
        client.close()
