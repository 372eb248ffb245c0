"""The official client's PartitionedTableAppender, driven so that its pool's race cannot hang
a test run.

dolphindb 3.0.6.1's connection pool (api-cplusplus `DBConnectionPoolImpl::run`) pushes a task
onto the workers' queue *before* it marks the task pending:

    queue_->push(Task(script, identity, ...));
    taskStatus_.setResult(identity, TaskStatusMgmt::Result());   // stage: not finished

When a worker sends the task and reads the server's answer before the caller's thread reaches
the second line (the caller descheduled right after the push, as happens on a busy 2-core
machine against a server that answers in well under a millisecond), the finished result is
overwritten by a pending one, and `PartitionedTableAppender` polls `isFinished` for ever: both
workers idle, the server idle. Seen in about one run in ten of test_client.py (gdb: the main
thread in `PartitionedTableAppender::init`'s usleep loop, both `AsyncWorker`s waiting for
work). The loop holds the GIL, so no thread of the same process can watch it: each append runs
in a child process, which is killed when it stalls. No server can prevent the race; a stall is
handled by what it left behind:

- the appender is built (it only reads the table's schema) before any row is sent, and the
  child reports that: a stall before it wrote nothing, and is retried in a fresh child;
- a stall in `append` means a task finished and its answer was lost, so the rows are in (the
  other tasks finished long before the stall is noticed): the count is unknown (`None`), and
  callers check the table itself, as they do anyway.
"""
import multiprocessing
import queue
import warnings

# Far above anything a stage takes here (milliseconds, plus a second to start the child), far
# below CI's patience.
STALL_SECONDS = 30
ATTEMPTS = 3


def _child(out, host, port, user, password, db_path, table, column, df, threads):
    import dolphindb as ddb
    try:
        pool = ddb.DBConnectionPool(host, port, threads, user, password)
        appender = ddb.PartitionedTableAppender(db_path=db_path, table_name=table,
                                                partition_col=column, pool=pool)
        out.put(("built", None))
        rows = appender.append(df)
        pool.shutDown()
        out.put(("appended", rows))
    except Exception as e:  # handed to the parent
        out.put(("error", f"{type(e).__name__}: {e}"))


def partitioned_append(host, port, db_path, table, column, df, threads=2,
                       user="admin", password="123456"):
    """Appends `df` through a pool of `threads` connections; returns the rows the appender
    reports, or None when its pool lost a finished task's answer (the rows are then in)."""
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(ATTEMPTS):
        out = ctx.Queue()
        child = ctx.Process(target=_child, daemon=True,
                            args=(out, host, port, user, password, db_path, table, column, df, threads))
        child.start()
        stage = "started"
        try:
            while True:
                try:
                    kind, value = out.get(timeout=STALL_SECONDS)
                except queue.Empty:
                    break
                if kind == "error":
                    raise RuntimeError(value)
                if kind == "appended":
                    return value
                stage = kind
        finally:
            child.kill()
            child.join()
        if stage == "built":
            warnings.warn("the client's pool lost an append task's answer; its rows are in")
            return None
        warnings.warn(f"the client's pool lost the schema task's answer (attempt {attempt + 1}); "
                      "retrying in a fresh process")
    raise AssertionError(f"PartitionedTableAppender for {db_path} stalled {ATTEMPTS} times")
