// The official DolphinDB JavaScript API, unmodified, against a Porpoise node over WebSocket
// (D105). PORPOISE_WS names the node (ws://host:port); tests/python/test_js_api.py starts the
// servers and runs this file with `node --test`.
import assert from 'node:assert/strict'
import { test, after } from 'node:test'

// Node.js 20 lacks Promise.withResolvers (22 has it), which the package's websocket helper
// calls; this is the standard shape of it, not a change to the client.
Promise.withResolvers ??= function () {
    let resolve, reject
    const promise = new Promise((a, b) => { resolve = a; reject = b })
    return { promise, resolve, reject }
}

const { DDB, DdbInt, DdbVectorDouble, DdbVectorInt, DdbVectorString, DdbTable } = await import('dolphindb')

const url = process.env.PORPOISE_WS
assert.ok(url, 'set PORPOISE_WS to ws://host:port of a Porpoise data, compute or single node')

const ddb = new DDB(url, { autologin: true, username: 'admin', password: '123456', verbose: false })
after(() => ddb.disconnect())

test('connects and logs in over WebSocket; a script returns its value', async () => {
    await ddb.connect()
    const r = await ddb.eval('x = 1..5\nx * 2')
    assert.deepEqual(Array.from(r.value), [2, 4, 6, 8, 10])
})

test('print output arrives as its own message before the result', async () => {
    const printed = []
    const r = await ddb.eval('print("hello from porpoise")\n40 + 2', {
        listener: m => { if (m.type === 'print') printed.push(m.data) },
    })
    assert.equal(r.value, 42)
    assert.deepEqual(printed, ['hello from porpoise'])
})

test('a function call with arguments, and a partial application as the function', async () => {
    assert.equal((await ddb.call('add', [new DdbInt(2), new DdbInt(3)])).value, 5)
    await ddb.eval('def scaled(k, v) { return k * v }')
    const r = await ddb.call('scaled{10}', [new DdbVectorInt([1, 2, 3])])
    assert.deepEqual(Array.from(r.value), [10, 20, 30])
})

test('uploaded variables live in the session, and a large one crosses in one message', async () => {
    const n = 200_000
    const big = new Float64Array(n).map((_, i) => i * 0.5)
    await ddb.upload(['small', 'big'], [new DdbVectorDouble([1.5, 2.5]), new DdbVectorDouble(big)])
    assert.deepEqual(Array.from((await ddb.eval('small')).value), [1.5, 2.5])
    // INT or LONG: the client maps a LONG to a BigInt.
    assert.equal(Number((await ddb.eval('size(big)')).value), n)
    assert.equal((await ddb.eval('sum(big)')).value, (n - 1) * n / 4)
})

test('a table comes back as rows', async () => {
    const t = await ddb.eval('table(1..3 as id, `a`b`c as sym, 1.5 2.5 3.5 as px)')
    assert.deepEqual(t.to_rows(), [
        { id: 1, sym: 'a', px: 1.5 },
        { id: 2, sym: 'b', px: 2.5 },
        { id: 3, sym: 'c', px: 3.5 },
    ])
})

test('a script error names its line and column; the session carries on', async () => {
    await ddb.eval('a = 1')
    await assert.rejects(ddb.eval('a = 2\nb = a +'), e => {
        assert.match(e.message, /line #2, column #8/)
        return true
    })
    // The script did not parse, so none of it ran.
    assert.equal((await ddb.eval('a')).value, 1)
})

test('a DFS database is created, appended to with a table from JS, and queried', async () => {
    await ddb.eval(
        'if (existsDatabase("dfs://jsdb")) { dropDatabase("dfs://jsdb") }\n' +
        'db = database("dfs://jsdb", VALUE, 1..4)\n' +
        'db.createPartitionedTable(table(1:0, `id`sym`px, [INT, STRING, DOUBLE]), `t, `id)')
    const rows = new DdbTable([
        new DdbVectorInt([1, 2, 3, 4, 1], 'id'),
        new DdbVectorString(['a', 'b', 'c', 'd', 'e'], 'sym'),
        new DdbVectorDouble([1, 2, 3, 4, 5], 'px'),
    ], 'rows')
    const appended = await ddb.call('tableInsert{loadTable("dfs://jsdb", "t")}', [rows])
    assert.equal(Number(appended.value), 5)
    const r = await ddb.eval('select count(*) as n, sum(px) as px from loadTable("dfs://jsdb", "t") group by id order by id')
    const counted = r.to_rows().map(row => ({ ...row, n: Number(row.n) }))
    assert.deepEqual(counted, [
        { id: 1, n: 2, px: 6 },
        { id: 2, n: 1, px: 2 },
        { id: 3, n: 1, px: 3 },
        { id: 4, n: 1, px: 4 },
    ])
})

test('a wrong password is refused', async () => {
    const bad = new DDB(url, { autologin: true, username: 'admin', password: 'wrong' })
    await assert.rejects(bad.connect())
    bad.disconnect()
})
