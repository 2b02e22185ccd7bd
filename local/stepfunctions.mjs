// The local Step Functions service (Node 22): the state machines as synthesized, executed by
// aws-local-stepfunctions, behind the Step Functions API (JSON 1.0, `X-Amz-Target: AWSStepFunctions.<Action>`):
// StartSyncExecution, StartExecution, DescribeExecution, StopExecution, ListExecutions, GetExecutionHistory,
// DescribeStateMachine, ListStateMachines. boto3's `stepfunctions` client talks to it through AWS_ENDPOINT_URL_SFN.
//
// Task states call the local Lambda service's Invoke API (POST /2015-03-31/functions/<arn>/invocations). A function
// error becomes the state error the way Step Functions reports it: Error = the errorType, Cause = the function's
// error payload (JSON) as Lambda returned it; an invocation that fails before the function runs becomes
// Lambda.ServiceException / Lambda.TooManyRequestsException / Lambda.SdkClientException. Retry and Catch are the
// definition's own, with its real intervals, backoff and jitter.
//
// Usage: node local/stepfunctions.mjs <config.json>   (written by local/stepfunctions.py)
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { StateMachine } from 'aws-local-stepfunctions';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const MAX_PAYLOAD = 262144; // Step Functions: 256 KiB per state input/output and execution input
const KEEP_EXECUTIONS = 20000;
const machines = new Map(); // arn -> {name, arn, type, definition, machine, createdAt}
const executions = new Map(); // executionArn -> record

function log(message) {
  process.stderr.write(`${new Date().toISOString()} stepfunctions INFO ${message}\n`);
}

class ApiError extends Error {
  constructor(code, message, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// ---- Lambda tasks ----
function taskResources(definition, found = {}) {
  for (const [name, state] of Object.entries(definition.States || {})) {
    if (state.Type === 'Task') found[name] = state.Resource;
    for (const branch of state.Branches || []) taskResources(branch, found);
    if (state.Iterator) taskResources(state.Iterator, found);
    if (state.ItemProcessor) taskResources(state.ItemProcessor, found);
  }
  return found;
}

function stateError(name, cause) {
  const error = new Error(cause);
  error.name = name;
  return error;
}

function lambdaServiceError(status, code, message) {
  const name = status === 429 ? 'Lambda.TooManyRequestsException'
    : status >= 500 ? 'Lambda.ServiceException' : 'Lambda.AWSLambdaException';
  return stateError(name, `${message} (Service: Lambda, Status Code: ${status}, Error Code: ${code})`);
}

async function invokeLambda(resource, input, record) {
  if (record) {
    pushEvent(record, 'LambdaFunctionScheduled',
      { lambdaFunctionScheduledEventDetails: { resource, input: JSON.stringify(input) } });
    pushEvent(record, 'LambdaFunctionStarted', {});
  }
  try {
    const output = await callLambda(resource, input);
    if (record) {
      pushEvent(record, 'LambdaFunctionSucceeded', { lambdaFunctionSucceededEventDetails: { output: JSON.stringify(output) } });
    }
    return output;
  } catch (error) {
    if (record) {
      pushEvent(record, 'LambdaFunctionFailed', { lambdaFunctionFailedEventDetails: { error: error.name, cause: error.message } });
    }
    throw error;
  }
}

async function callLambda(resource, input) {
  const functionName = resource.startsWith('arn:aws:states:::lambda:invoke') ? input.FunctionName : resource;
  const url = `${config.lambdaEndpoint}/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`;
  let response;
  let text;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Amz-Invocation-Type': 'RequestResponse' },
      body: JSON.stringify(input),
    });
    text = await response.text();
  } catch (error) {
    throw stateError('Lambda.SdkClientException', `Unable to execute HTTP request: ${error.cause?.message || error.message}`);
  }
  if (response.status !== 200) {
    let code = response.headers.get('x-amzn-errortype') || 'ServiceException';
    let message = text;
    try { message = JSON.parse(text).message || text; } catch { /* not JSON */ }
    throw lambdaServiceError(response.status, code, message);
  }
  if (response.headers.get('x-amz-function-error')) {
    let errorType = 'Lambda.Unknown';
    try { errorType = JSON.parse(text).errorType || errorType; } catch { /* not JSON */ }
    throw stateError(errorType, text); // Step Functions: Error = errorType, Cause = the error payload
  }
  if (Buffer.byteLength(text) > MAX_PAYLOAD) {
    throw stateError('States.DataLimitExceeded',
      `The state/task '${functionName}' returned a result with a size exceeding the maximum number of bytes service limit.`);
  }
  return text ? JSON.parse(text) : null;
}

// aws-local-stepfunctions 3.0.0 evaluates a type test with `false` (`"IsNull": false`, `"IsPresent": false`, ...)
// as always false (`IsNull && value === null`), where the States Language means "is not null". The pipeline's
// HasAudio Choice uses `"IsNull": false`, so the interpreter gets the equivalent `{"Not": {... "IsNull": true}}`.
// DescribeStateMachine still returns the definition as synthesized; only the copy the interpreter runs changes.
const TYPE_TESTS = ['IsNull', 'IsPresent', 'IsNumeric', 'IsString', 'IsBoolean', 'IsTimestamp'];

function fixTypeTests(rule) {
  if (Array.isArray(rule)) return rule.map(fixTypeTests);
  if (rule === null || typeof rule !== 'object') return rule;
  const test = TYPE_TESTS.find((name) => rule[name] === false);
  if (test && 'Variable' in rule) {
    const { Next, ...rest } = rule;
    const negated = { Not: { ...rest, [test]: true } };
    return Next === undefined ? negated : { ...negated, Next };
  }
  return Object.fromEntries(Object.entries(rule).map(([key, value]) => [key, fixTypeTests(value)]));
}

function interpreterDefinition(definition) {
  const copy = structuredClone(definition);
  const walk = (machine) => {
    for (const state of Object.values(machine.States || {})) {
      if (state.Type === 'Choice') state.Choices = state.Choices.map(fixTypeTests);
      for (const branch of state.Branches || []) walk(branch);
      if (state.Iterator) walk(state.Iterator);
      if (state.ItemProcessor) walk(state.ItemProcessor);
    }
  };
  walk(copy);
  return copy;
}

function machineRecord(spec) {
  const definition = JSON.parse(spec.definition);
  return {
    ...spec,
    definitionObject: definition,
    resources: taskResources(definition),
    machine: new StateMachine(interpreterDefinition(definition), { validationOptions: { checkArn: true, checkPaths: true } }),
    createdAt: Date.now() / 1000,
  };
}

// ---- executions ----
// History events in GetExecutionHistory's shape: the interpreter's state events, and the Lambda events each task
// invocation records (LambdaFunctionScheduled/Started/Succeeded/Failed: a retry shows as one more scheduling).
// The interpreter's events reach us asynchronously: events are kept with their time and ordered (time, then the
// order Step Functions writes them in) when the history is read.
const RANK = [['ExecutionStarted', 0], ['StateEntered', 1], ['LambdaFunctionScheduled', 2], ['LambdaFunctionStarted', 3],
  ['LambdaFunctionSucceeded', 4], ['LambdaFunctionFailed', 4], ['StateExited', 5], ['StateFailed', 5], ['Execution', 6]];

function pushEvent(record, type, details, timestamp = Date.now()) {
  const rank = (RANK.find(([suffix]) => type.endsWith(suffix) || type.startsWith(suffix)) || ['', 5])[1];
  record.events.push({ ts: timestamp, rank, seq: record.events.length, type, details });
}

function history(record) {
  return [...record.events].sort((a, b) => a.ts - b.ts || a.rank - b.rank || a.seq - b.seq)
    .map((event, index) => ({ timestamp: event.ts / 1000, type: event.type, id: index + 1, previousEventId: index,
      ...event.details }));
}

const text = (value) => (typeof value === 'string' ? value : JSON.stringify(value ?? null));

function recordLibraryEvent(record, event) {
  const kind = event.state?.type;
  const at = event.timestamp;
  switch (event.type) {
    case 'ExecutionStarted':
      return pushEvent(record, 'ExecutionStarted', { executionStartedEventDetails: { input: text(event.input) } }, at);
    case 'ExecutionSucceeded':
      return pushEvent(record, 'ExecutionSucceeded', { executionSucceededEventDetails: { output: text(event.output) } }, at);
    case 'ExecutionFailed':
      return pushEvent(record, 'ExecutionFailed',
        { executionFailedEventDetails: { error: String(event.Error), cause: text(event.Cause) } }, at);
    case 'ExecutionAborted':
      return pushEvent(record, 'ExecutionAborted', {}, at);
    case 'ExecutionTimeout':
      return pushEvent(record, 'ExecutionTimedOut', {}, at);
    case 'StateEntered':
      return pushEvent(record, `${kind}StateEntered`,
        { stateEnteredEventDetails: { name: event.state.name, input: text(event.state.input) } }, at);
    case 'StateExited':
      return pushEvent(record, `${kind}StateExited`,
        { stateExitedEventDetails: { name: event.state.name, output: text(event.state.output) } }, at);
    case 'StateFailed':
      if (kind === 'Parallel') {
        pushEvent(record, 'ParallelStateFailed', {}, at);
      }
      return undefined;
    default:
      return undefined; // branch bookkeeping, retries (visible as new LambdaFunctionScheduled events)
  }
}

async function collectEvents(record, generator) {
  try {
    for await (const event of generator) recordLibraryEvent(record, event);
  } catch { /* the log ends with the execution */ }
}

function failure(error) {
  // ExecutionError wraps what failed the execution (a Fail state's FailStateError: name = Error, message = Cause)
  const cause = error.cause ?? error;
  return { error: String(cause.name ?? 'States.Runtime'), cause: String(cause.message ?? '') };
}

function startExecution(machine, name, input) {
  const executionArn = machine.arn.replace(':stateMachine:', machine.type === 'EXPRESS' ? ':express:' : ':execution:') + `:${name}`;
  const record = {
    executionArn, stateMachineArn: machine.arn, name, status: 'RUNNING', startDate: Date.now() / 1000, input,
    events: [], type: machine.type,
  };
  const handlers = Object.fromEntries(Object.entries(machine.resources).map(
    ([state, resource]) => [state, (stateInput) => invokeLambda(resource, stateInput, record)]));
  const execution = machine.machine.run(JSON.parse(input), {
    overrides: { taskResourceLocalHandlers: handlers },
    context: { Execution: { Id: executionArn, Name: name }, StateMachine: { Id: machine.arn, Name: machine.name } },
  });
  record.abort = execution.abort;
  collectEvents(record, execution.eventLogs);
  record.done = execution.result.then(
    (output) => {
      const text = JSON.stringify(output ?? null);
      if (Buffer.byteLength(text) > MAX_PAYLOAD) {
        Object.assign(record, { status: 'FAILED', error: 'States.DataLimitExceeded',
          cause: 'The state/task returned a result with a size exceeding the maximum number of bytes service limit.' });
      } else {
        Object.assign(record, { status: 'SUCCEEDED', output: text });
      }
    },
    (error) => {
      if (record.status === 'ABORTED') return;
      if (error.name === 'ExecutionTimeoutError') {
        Object.assign(record, { status: 'TIMED_OUT', error: 'States.Timeout',
          cause: 'The execution timed out (the definition\'s TimeoutSeconds).' });
      } else if (error.name === 'ExecutionAbortedError') {
        record.status = 'ABORTED';
      } else {
        Object.assign(record, { status: 'FAILED', ...failure(error) });
      }
    },
  ).finally(() => {
    record.stopDate = Date.now() / 1000;
    log(`${machine.name} ${name} ${record.status}${record.error ? ` ${record.error}` : ''} ` +
      `${Math.round((record.stopDate - record.startDate) * 1000)} ms`);
  });
  executions.set(executionArn, record);
  if (executions.size > KEEP_EXECUTIONS) executions.delete(executions.keys().next().value);
  return record;
}

function describe(record) {
  const out = {
    executionArn: record.executionArn, stateMachineArn: record.stateMachineArn, name: record.name,
    status: record.status, startDate: record.startDate, input: record.input, inputDetails: { included: true },
  };
  if (record.stopDate !== undefined) out.stopDate = record.stopDate;
  if (record.output !== undefined) { out.output = record.output; out.outputDetails = { included: true }; }
  if (record.error !== undefined) out.error = record.error;
  if (record.cause !== undefined) out.cause = record.cause;
  return out;
}

// ---- the API ----
const NAME = /^[A-Za-z0-9_-]{1,80}$/;

function machineFor(arn) {
  if (typeof arn !== 'string' || !arn.startsWith('arn:')) throw new ApiError('InvalidArn', `Invalid Arn: '${arn}'`);
  const machine = machines.get(arn);
  if (!machine) throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
  return machine;
}

function checkInput(input) {
  const text = input === undefined ? '{}' : input;
  if (typeof text !== 'string') throw new ApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input');
  if (Buffer.byteLength(text) > MAX_PAYLOAD) {
    throw new ApiError('InvalidExecutionInput', `Input exceeds the maximum size of ${MAX_PAYLOAD} bytes`);
  }
  try { JSON.parse(text); } catch { throw new ApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: not JSON'); }
  return text;
}

function executionName(name) {
  const value = name ?? crypto.randomUUID();
  if (!NAME.test(value)) throw new ApiError('InvalidName', `Invalid Name: '${value}'`);
  return value;
}

const actions = {
  async StartExecution(request) {
    const machine = machineFor(request.stateMachineArn);
    const name = executionName(request.name);
    const input = checkInput(request.input);
    const arn = machine.arn.replace(':stateMachine:', machine.type === 'EXPRESS' ? ':express:' : ':execution:') + `:${name}`;
    const existing = executions.get(arn);
    if (existing && machine.type === 'STANDARD') {
      if (existing.status === 'RUNNING' && existing.input === input) {
        return { executionArn: existing.executionArn, startDate: existing.startDate };
      }
      throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const record = startExecution(machine, name, input);
    log(`${machine.name} ${name} started`);
    return { executionArn: record.executionArn, startDate: record.startDate };
  },
  async StartSyncExecution(request) {
    const machine = machineFor(request.stateMachineArn);
    if (machine.type !== 'EXPRESS') {
      throw new ApiError('StateMachineTypeNotSupported', 'This operation is not supported by this type of state machine');
    }
    const record = startExecution(machine, executionName(request.name), checkInput(request.input));
    await record.done;
    const out = describe(record);
    delete out.inputDetails;
    out.inputDetails = { included: true };
    out.billingDetails = {
      billedMemoryUsedInMB: 64, billedDurationInMilliseconds: Math.max(100, Math.ceil((record.stopDate - record.startDate) * 1000)),
    };
    executions.delete(record.executionArn); // Express executions are not kept (DescribeExecution does not see them)
    return out;
  },
  async DescribeExecution(request) {
    const arn = request.executionArn;
    if (typeof arn !== 'string' || !arn.startsWith('arn:')) throw new ApiError('InvalidArn', `Invalid Arn: '${arn}'`);
    const record = executions.get(arn);
    if (!record || record.type === 'EXPRESS') throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return describe(record);
  },
  async StopExecution(request) {
    const record = executions.get(request.executionArn);
    if (!record) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${request.executionArn}'`);
    if (record.status === 'RUNNING') {
      Object.assign(record, { status: 'ABORTED', error: request.error, cause: request.cause });
      record.abort();
    }
    return { stopDate: Date.now() / 1000 };
  },
  async ListExecutions(request) {
    const machine = machineFor(request.stateMachineArn);
    const items = [...executions.values()]
      .filter((r) => r.stateMachineArn === machine.arn && (!request.statusFilter || r.status === request.statusFilter))
      .reverse().slice(0, request.maxResults || 100)
      .map((r) => ({ executionArn: r.executionArn, stateMachineArn: r.stateMachineArn, name: r.name, status: r.status,
        startDate: r.startDate, ...(r.stopDate !== undefined ? { stopDate: r.stopDate } : {}) }));
    return { executions: items };
  },
  async GetExecutionHistory(request) {
    const record = executions.get(request.executionArn);
    if (!record) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${request.executionArn}'`);
    const events = history(record);
    return { events: request.reverseOrder ? events.reverse() : events };
  },
  async DescribeStateMachine(request) {
    const machine = machineFor(request.stateMachineArn);
    return {
      stateMachineArn: machine.arn, name: machine.name, status: 'ACTIVE', definition: machine.definition,
      roleArn: machine.roleArn, type: machine.type, creationDate: machine.createdAt,
    };
  },
  async ListStateMachines() {
    return { stateMachines: [...machines.values()].map((m) => ({ stateMachineArn: m.arn, name: m.name, type: m.type,
      creationDate: m.createdAt })) };
  },
};

function reply(response, status, body, headers = {}) {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.0', 'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': crypto.randomUUID(), ...headers });
  response.end(text);
}

const server = createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', async () => {
    if (request.method === 'GET' && request.url === '/ping') return reply(response, 200, { ok: true });
    const target = request.headers['x-amz-target'] || '';
    const action = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
    if (!actions[action]) {
      return reply(response, 400, { __type: 'com.amazon.coral.service#UnknownOperationException', message: `Unknown operation ${target}` });
    }
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'); } catch {
      return reply(response, 400, { __type: 'com.amazon.coral.service#SerializationException', message: 'Invalid JSON' });
    }
    try {
      reply(response, 200, await actions[action](body));
    } catch (error) {
      if (error instanceof ApiError) {
        reply(response, error.status, { __type: `com.amazonaws.swf.service.v2.model#${error.code}`, message: error.message });
      } else {
        log(`${action} failed: ${error.stack}`);
        reply(response, 500, { __type: 'com.amazonaws.swf.service.v2.model#InternalFailure', message: String(error.message) });
      }
    }
  });
});
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.requestTimeout = 0; // StartSyncExecution holds the request for the whole execution

for (const spec of config.machines) {
  machines.set(spec.arn, machineRecord(spec));
  log(`state machine ${spec.name} (${spec.type}) from ${spec.source}: ${Object.keys(machines.get(spec.arn).resources).length} Lambda tasks`);
}
server.listen(config.port, '127.0.0.1', () => log(`Step Functions listening on http://127.0.0.1:${config.port}`));
server.on('error', (error) => { log(`cannot listen: ${error.message}`); process.exit(1); });
if (process.env.VLP_LOCAL_DIE_WITH_PARENT === '1') { // test runs: no orphan when the launcher dies
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
}
process.on('SIGTERM', () => { server.close(); process.exit(0); });
process.on('SIGINT', () => { server.close(); process.exit(0); });
