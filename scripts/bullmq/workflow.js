// BullMQ's own workflow (its Lua scripts drive every state change) against a server on
// REDIS_PORT: plain, delayed and prioritised jobs, a job that fails and is retried, a
// flow-less queue's counts, and removal. Exits 0 when every job ends where BullMQ says.
const { Queue, Worker, QueueEvents } = require('bullmq');

const connection = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT || 6379) };
const name = `corekv-${process.pid}`;

function fail(msg) {
  console.error(`bullmq workflow: ${msg}`);
  process.exit(1);
}

async function main() {
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  const total = 30;
  const seen = new Map();
  let failedOnce = false;
  const worker = new Worker(
    name,
    async (job) => {
      if (job.name === 'flaky' && !failedOnce) {
        failedOnce = true;
        throw new Error('first attempt fails');
      }
      seen.set(job.id, (seen.get(job.id) || 0) + 1);
      return { doubled: job.data.n * 2 };
    },
    { connection, concurrency: 4 },
  );
  const done = new Promise((resolve) => {
    let completed = 0;
    worker.on('completed', () => {
      completed += 1;
      if (completed === total + 1) resolve();
    });
  });
  for (let n = 0; n < total; n++) {
    const opts = n % 3 === 0 ? { delay: 50 } : n % 3 === 1 ? { priority: 1 + (n % 5) } : {};
    await queue.add('plain', { n }, opts);
  }
  const flaky = await queue.add('flaky', { n: 100 }, { attempts: 3, backoff: { type: 'fixed', delay: 20 } });
  const timeout = setTimeout(() => fail('jobs did not all complete within 30 s'), 30000);
  await done;
  clearTimeout(timeout);
  const job = await queue.getJob(flaky.id);
  if (job.attemptsMade !== 2) fail(`flaky job made ${job.attemptsMade} attempts, expected 2`);
  if (job.returnvalue.doubled !== 200) fail(`flaky job returned ${JSON.stringify(job.returnvalue)}`);
  const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'delayed', 'active');
  if (counts.completed !== total + 1 || counts.failed !== 0 || counts.waiting !== 0 || counts.delayed !== 0 || counts.active !== 0) {
    fail(`unexpected counts ${JSON.stringify(counts)}`);
  }
  for (const [id, times] of seen) {
    if (times !== 1) fail(`job ${id} completed ${times} times`);
  }
  await worker.close();
  await queue.obliterate({ force: true });
  const left = await queue.getJobCounts();
  if (Object.values(left).some((c) => c !== 0)) fail(`obliterate left ${JSON.stringify(left)}`);
  await events.close();
  await queue.close();
  console.log(`bullmq workflow: ${total + 1} jobs completed (delayed, prioritised, retried), queue obliterated`);
}

main().catch((e) => fail(e.stack || String(e)));
