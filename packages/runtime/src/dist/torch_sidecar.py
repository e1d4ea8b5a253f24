# The torch.distributed (Gloo) sidecar of one wgpt rank: started by torch.ts, it moves the rank's data between the
# nodes. Node and this process share a per-rank file on /dev/shm (mapped here, pread/pwrite there); commands and
# answers are JSON lines on stdin/stdout. The file holds two slot sets (Node fills one while this process reduces the
# other), each a send region and an output region of `chunk` floats.
#
# Every reduction is a reduce-scatter (all_to_all_single: each rank receives every rank's piece of its own shard)
# whose pieces are added in rank order 0..W-1 in f32, then an all_gather of the sums: each element is summed once, in
# one order, so every rank gets the same bits, and the bits of the shared-memory backend.
#
# Failures: each rank writes its operation count to the job's store before each operation, a heartbeat from a
# watcher thread, `gone/<rank>` when its Node process ends, and `abort` with the job's reason. When an operation
# fails (a Gloo timeout, a peer's connection closed) those keys name the rank to blame; the watcher also ends the
# job on an idle rank as soon as another rank aborts, exits or stops beating.
import json
import os
import sys
import threading
import time
import zlib


STDOUT_LOCK = threading.Lock()


def send(msg):
    with STDOUT_LOCK:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()


def fatal(msg):
    send({"event": "fatal", "msg": msg})
    sys.stdout.flush()
    os._exit(1)


# The store's keys (under the job's prefix); flags and counters are integers, read with add(key, 0):
#   joined/R, closed/R, seen/R (R read the job's end), gone/R (R's Node process ended): 1 when so
#   joined, closed, gone: how many ranks have; hb/R: R's heartbeat count; op/R: R's operation count
#   abort: 1 once claimed, then abortmsg: the reason; tag/R: the operation R called, when the ranks disagree
# A watcher thread polls a few keys only (abort, gone, its neighbour's heartbeat), so the store's load per rank
# does not grow with the world size; the keys of every rank are read only once something went wrong.
commands = []
cv = threading.Condition()
state = {"calls": 0, "tag": "joining the job", "closing": False, "failed": False, "reader": None}


def read_stdin():
    """Commands for the main thread; `abort` at once (the main thread may be inside a Gloo op); EOF: Node is gone."""
    for line in sys.stdin:
        m = json.loads(line)
        if m["op"] == "abort":
            try:
                claim_abort(state["reader"], m["msg"])
            except Exception:  # noqa: BLE001 (no store yet, or gone: nobody left to tell)
                pass
            continue
        with cv:
            commands.append(m)
            cv.notify()
    if state["failed"]:
        return  # fail() ends this process once the others know
    if not state["closing"] and state["reader"] is not None:
        try:
            state["reader"].set(f"gone/{RANK}", "1")
            state["reader"].add("gone", 1)
        except Exception:  # noqa: BLE001
            pass
        linger()
    os._exit(0)


def claim_abort(s, msg):
    if s.add("abort", 1) == 1:
        s.set("abortmsg", msg)


cfg = json.loads(sys.argv[1])
RANK, W = cfg["rank"], cfg["worldSize"]
# Started before torch is imported (seconds): a rank that ends meanwhile takes its sidecar with it.
threading.Thread(target=read_stdin, daemon=True).start()

try:
    import datetime
    import mmap

    import torch
    import torch.distributed as dist
except Exception as e:  # noqa: BLE001 (any import failure is the same answer: no usable torch here)
    fatal(f"cannot import torch: {type(e).__name__}: {e}")
if not dist.is_available() or not dist.is_gloo_available():
    fatal(f"torch {torch.__version__} was built without torch.distributed's Gloo backend")

ADDR, PORT = cfg["addr"], cfg["port"]
TIMEOUT = cfg["timeoutMs"] / 1000
JOIN_TIMEOUT = cfg["joinTimeoutMs"] / 1000
CHUNK = cfg["chunk"]
# torchrun's agent store outlives a restart of the workers: each attempt keeps its own keys.
PREFIX = f"{cfg['prefix']}{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
# Under torchrun the agent hosts the store (MASTER_PORT is its port) and every worker is a client.
AGENT_STORE = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
HOSTS_STORE = RANK == 0 and not AGENT_STORE
STORE_HOST = "the launcher's store" if AGENT_STORE else "rank 0"
BEAT = 0.25
STALE = min(10.0, max(3.0, TIMEOUT / 2))
# The watcher's store client is also used by the main thread when an operation fails: one at a time.
WLOCK = threading.RLock()


def num(s, key):
    return s.add(key, 0)


def ranks(rs):
    return f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}"


def store_client(timeout):
    s = dist.TCPStore(ADDR, PORT, None, False, datetime.timedelta(seconds=timeout))
    return dist.PrefixStore(PREFIX, s)


def fail(msg):
    """Ends the job on every rank with `msg` (the first reason stays) and this rank with the job's reason."""
    if state["failed"]:
        return
    state["failed"] = True
    try:
        with WLOCK:
            claim_abort(watcher_store, msg)
            msg = watcher_store.get("abortmsg").decode()
            watcher_store.set(f"seen/{RANK}", "1")
    except Exception:  # noqa: BLE001 (the store is gone too: our own reason is all there is)
        pass
    send({"event": "fail", "msg": msg})
    linger()
    os._exit(1)


def linger():
    """The sidecar that hosts the store stays until the others have read why the job ended (or left)."""
    if not HOSTS_STORE:
        return
    deadline = time.monotonic() + STALE + 1
    try:
        with WLOCK:
            s = watcher_store
            while time.monotonic() < deadline:
                if all(num(s, f"seen/{r}") or num(s, f"gone/{r}") or num(s, f"closed/{r}") for r in range(1, W)):
                    return
                time.sleep(0.05)
    except Exception:  # noqa: BLE001
        pass


# ---- joining ----
try:
    if not HOSTS_STORE:
        try:
            base = dist.TCPStore(ADDR, PORT, None, False, datetime.timedelta(seconds=JOIN_TIMEOUT))
        except Exception as e:  # noqa: BLE001
            fatal(
                f"rank {RANK} could not reach {STORE_HOST}'s store at {ADDR}:{PORT} within {JOIN_TIMEOUT:g} s "
                f"({e}): did it start? (MASTER_ADDR, MASTER_PORT)"
            )
    else:
        try:
            base = dist.TCPStore(
                ADDR, PORT, None, True, datetime.timedelta(seconds=JOIN_TIMEOUT), wait_for_workers=False
            )
        except Exception as e:  # noqa: BLE001
            fatal(f"rank 0 cannot host the job's store on {ADDR}:{PORT} ({e}): is MASTER_PORT taken?")
    store = dist.PrefixStore(PREFIX, base)
    base.set_timeout(datetime.timedelta(seconds=TIMEOUT))
    watcher_store = store_client(TIMEOUT)
    state["reader"] = store_client(TIMEOUT)
    store.set(f"joined/{RANK}", "1")
    store.add("joined", 1)
    deadline = time.monotonic() + JOIN_TIMEOUT
    while num(store, "joined") < W:
        if num(store, "abort"):
            fail(store.get("abortmsg").decode())
        if time.monotonic() > deadline:
            missing = ranks([r for r in range(W) if not num(store, f"joined/{r}")])
            fail(f"{missing} did not join within {JOIN_TIMEOUT:g} s")
        time.sleep(0.05)
    dist.init_process_group(
        "gloo", store=dist.PrefixStore("pg", store), rank=RANK, world_size=W,
        timeout=datetime.timedelta(seconds=TIMEOUT),
    )
except SystemExit:
    raise
except Exception as e:  # noqa: BLE001
    fatal(f"rank {RANK} could not join the job: {type(e).__name__}: {e}")

fd = os.open(cfg["file"], os.O_RDWR)
mm = mmap.mmap(fd, 4 * CHUNK * 4)
os.close(fd)
shared = torch.frombuffer(mm, dtype=torch.float32)
regions = [[shared[(2 * p + j) * CHUNK:(2 * p + j + 1) * CHUNK] for j in (0, 1)] for p in (0, 1)]
recv = torch.empty(CHUNK)
acc = torch.empty(CHUNK)

# ---- failure detection ----
beats = {}  # rank -> (last heartbeat count seen, when it last changed)


def suspects(during_op):
    """Why the job failed, from the store: abort, ranks gone, ranks silent, ranks behind (only for an op)."""
    with WLOCK:
        s = watcher_store
        if num(s, "abort"):
            return s.get("abortmsg").decode()
        others = [r for r in range(W) if r != RANK and not num(s, f"closed/{r}")]
        gone = [r for r in others if num(s, f"gone/{r}")]
        if gone:
            return f"{ranks(gone)} exited or crashed (its process ended) while rank {RANK} was {state['tag']}"
        now = time.monotonic()
        silent = [r for r in others if r in beats and now - beats[r][1] > STALE]
        if silent:
            return (
                f"{ranks(silent)} stopped responding (no heartbeat for {STALE:g} s: its sidecar was killed or its "
                f"machine is down) while rank {RANK} was {state['tag']}"
            )
        if during_op:
            ops = {r: num(s, f"op/{r}") for r in range(W)}
            behind = [r for r in range(W) if ops[r] < state["calls"]]
            if behind:
                where = ", ".join(f"rank {r} at call {ops[r]}" for r in behind)
                return (
                    f"{ranks(behind)} did not reach {state['tag'][3:]} within {TIMEOUT:g} s of the others ({where}: "
                    "hung, or far slower than the others)"
                )
    return None


def watch():
    n = 0
    last = time.monotonic()
    while True:
        try:
            n += 1
            if state["closing"]:
                return
            with WLOCK:
                s = watcher_store
                s.set(f"hb/{RANK}", str(n))
                now = time.monotonic()
                if now - last > STALE / 2:
                    # This thread itself was held up (a busy machine): the others' silence proves nothing.
                    beats.clear()
                last = now
                # Each rank watches the next one's heartbeat: a silent rank is seen by one, who ends the job.
                nb = (RANK + 1) % W
                if nb != RANK and not num(s, f"closed/{nb}"):
                    v = num(s, f"hb/{nb}")
                    if nb not in beats or beats[nb][0] != v:
                        beats[nb] = (v, now)
                trouble = num(s, "abort") or num(s, "gone") or (nb in beats and now - beats[nb][1] > STALE)
            why = suspects(False) if trouble else None
            if why and not state["closing"]:
                fail(why)
        except Exception as e:  # noqa: BLE001 (the store itself is unreachable)
            if not state["closing"]:
                fail(
                    f"{STORE_HOST} exited or crashed (the job's store at {ADDR}:{PORT} is unreachable: {e}) while "
                    f"rank {RANK} was {state['tag']}"
                )
            return
        time.sleep(BEAT)


threading.Thread(target=watch, daemon=True).start()
send({"event": "ready"})

# ---- operations ----


def run(m):
    op = m["op"]
    if op in ("rs", "ag", "bc", "barrier", "close") and m.get("call", state["calls"]) != state["calls"]:
        state["calls"] = m["call"]
        state["tag"] = f"in {m['tag']}"
        store.set(f"op/{RANK}", str(state["calls"]))
        # Every rank must call the same operation on the same length (Gloo would not always notice): one small
        # all_gather per call compares them.
        sig = torch.tensor([zlib.crc32(m["tag"].encode())], dtype=torch.int64)
        sigs = [torch.empty_like(sig) for _ in range(W)]
        dist.all_gather(sigs, sig)
        if any(int(x) != int(sig) for x in sigs):
            store.set(f"tag/{RANK}", m["tag"])
            tags = [store.get(f"tag/{r}").decode() for r in range(W)]
            other = next(r for r in range(W) if tags[r] != tags[0])
            fail(f"ranks disagree: rank 0 called {tags[0]}, rank {other} called {tags[other]}")
    send_r, out_r = regions[m.get("p", 0)]
    if op == "rs":
        L, n = m["L"], m["len"]
        dist.all_to_all_single(recv[: W * L], send_r[: W * L])
        a = acc[:L]
        a[:n].copy_(recv[:n])
        for r in range(1, W):
            a[:n].add_(recv[r * L:r * L + n])
        if m["mean"]:
            # f32 division, as Node's Float32Array store of x / W (both round the exact quotient once).
            a[:n].div_(W)
        if m["gather"]:
            dist.all_gather([out_r[d * L:(d + 1) * L] for d in range(W)], a)
        else:
            out_r[:n].copy_(a[:n])
    elif op == "ag":
        L = m["L"]
        dist.all_gather([out_r[d * L:(d + 1) * L] for d in range(W)], send_r[:L])
    elif op == "bc":
        dist.broadcast(send_r[: m["len"]], src=m["root"])
    elif op in ("barrier", "close"):
        dist.barrier()
    if op == "close":
        state["closing"] = True
        store.set(f"closed/{RANK}", "1")
        store.add("closed", 1)
        if HOSTS_STORE:
            # This process hosts the store: the others leave it first.
            deadline = time.monotonic() + TIMEOUT
            while num(store, "closed") < W and time.monotonic() < deadline:
                time.sleep(0.02)


while True:
    with cv:
        while not commands:
            cv.wait()
        m = commands.pop(0)
    try:
        run(m)
    except Exception as e:  # noqa: BLE001 (a Gloo error: find out who is to blame)
        # A timeout blames the ranks that did not reach this operation; a connection that closed blames the rank
        # that left or went silent, which the store shows within STALE.
        timed_out = "timed out" in str(e).lower()
        deadline = time.monotonic() + STALE + 2 * BEAT
        why = None
        while why is None and time.monotonic() < deadline:
            try:
                why = suspects(timed_out)
            except Exception as e2:  # noqa: BLE001
                why = (
                    f"{STORE_HOST} exited or crashed (the job's store is unreachable: {e2}) while rank {RANK} was "
                    f"{state['tag']}"
                )
            if why is None:
                time.sleep(BEAT)
        fail(why or f"rank {RANK} {state['tag']}: {type(e).__name__}: {e}")
    send({"id": m["id"]})
    if m["op"] == "close":
        sys.stdout.flush()
        os._exit(0)
