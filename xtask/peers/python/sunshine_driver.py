"""Peer Sunshine REST driver: the official `sunshine-conversations-client` for Python.

Same phases as `zd-bench sunshine` (crates/zd-bench/src/sunshine.rs): list every message of
a seeded conversation page by page (newest first, then page[before]), create users and post
messages with `concurrency` requests in flight (threads, the client being synchronous).

`MessagesApi.list_messages(page=Page(...))` serializes `page` as JSON (`page={"before": ...}`),
which the API ignores, so pagination would never advance; the list phase therefore goes
through the same client's own `param_serialize` / `call_api` / `response_deserialize` with
`page[before]` and `page[size]`, which is what users of this client end up writing.
"""

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import sunshine_conversations_client as sc


def summary(samples):
    ordered = sorted(samples)

    def rank(pct):
        if not ordered:
            return 0
        index = max(1, -(-len(ordered) * pct // 100)) - 1
        return int(round(ordered[min(index, len(ordered) - 1)]))

    return {
        "p50_us": rank(50),
        "p99_us": rank(99),
        "max_us": int(round(ordered[-1])) if ordered else 0,
        "samples": len(ordered),
    }


def phase(name, ops, errors, elapsed, samples, first_error):
    p = {"name": name, "ops": ops, "errors": errors, "elapsed_s": elapsed, **summary(samples)}
    if first_error:
        p["first_error"] = str(first_error)[:300]
    return p


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def list_page(api_client, app_id, conversation_id, before):
    query = [("page[size]", 100)]
    if before:
        query.append(("page[before]", before))
    params = api_client.param_serialize(
        method="GET",
        resource_path="/v2/apps/{appId}/conversations/{conversationId}/messages",
        path_params={"appId": app_id, "conversationId": conversation_id},
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["basicAuth"],
    )
    response = api_client.call_api(*params)
    response.read()
    return api_client.response_deserialize(
        response_data=response, response_types_map={"200": "MessageListResponse"}
    ).data


def list_all(api_client, app_id, conversation_id):
    start = time.perf_counter()
    samples, items, cursor, error = [], 0, None, None
    while True:
        sent = time.perf_counter()
        try:
            page = list_page(api_client, app_id, conversation_id, cursor)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            error = e
            break
        samples.append((time.perf_counter() - sent) * 1e6)
        items += len(page.messages or [])
        meta = page.meta
        if meta is not None and meta.has_more and meta.before_cursor:
            cursor = meta.before_cursor
        else:
            break
    return phase("list", items, 1 if error else 0, time.perf_counter() - start, samples, error)


def concurrent(name, total, concurrency, op):
    samples, lock = [], threading.Lock()
    state = {"errors": 0, "first_error": None}

    def one(i):
        sent = time.perf_counter()
        try:
            op(i)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            with lock:
                state["errors"] += 1
                state["first_error"] = state["first_error"] or e
            return
        elapsed = (time.perf_counter() - sent) * 1e6
        with lock:
            samples.append(elapsed)

    # `concurrency` workers, each taking the next index when its request is done, as ours
    # (crates/zd-bench/src/sunshine.rs) and the Node driver do: never more than `concurrency`
    # requests in flight, and no queue of `total` pending futures held in memory meanwhile.
    indices = iter(range(total))

    def worker():
        while True:
            with lock:
                i = next(indices, None)
            if i is None:
                return
            one(i)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        workers = [pool.submit(worker) for _ in range(max(1, concurrency))]
        for w in workers:
            w.result()
    elapsed = time.perf_counter() - start
    return phase(name, len(samples), state["errors"], elapsed, samples, state["first_error"])


def main():
    parser = argparse.ArgumentParser()
    for flag in ("base", "app-id", "key-id", "key-secret", "list-conversation",
                 "post-conversation", "tag"):
        parser.add_argument("--" + flag, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--posts", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    configuration = sc.Configuration(host=args.base, username=args.key_id,
                                     password=args.key_secret)
    configuration.connection_pool_maxsize = max(args.concurrency, 8)
    api_client = sc.ApiClient(configuration)
    users_api = sc.UsersApi(api_client)
    messages_api = sc.MessagesApi(api_client)

    list_page(api_client, args.app_id, args.list_conversation, None)  # warm-up
    emit({"event": "ready", "client": "peer"})

    phases = [list_all(api_client, args.app_id, args.list_conversation)]

    def create_user(i):
        users_api.create_user(args.app_id, sc.UserCreateBody(
            external_id=f"{args.tag}-{i}", profile=sc.Profile(given_name="Bench")))

    phases.append(concurrent("create_users", args.users, args.concurrency, create_user))

    def post_message(i):
        messages_api.post_message(args.app_id, args.post_conversation, sc.MessagePost(
            author=sc.Author(type="business"),
            content=sc.Content(sc.TextMessage(type="text", text=f"bench {i}"))))

    phases.append(concurrent("post_messages", args.posts, args.concurrency, post_message))
    emit({"event": "done", "client": "peer", "phases": phases, "extra": None})


if __name__ == "__main__":
    main()
