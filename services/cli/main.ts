// `picloud`: the admin API from a terminal (docs/cli.md). Finds the command named by the first
// one or two words, runs it, and turns every failure into one line on stderr and an exit code.
import { runCommand, type Command } from "./command.ts";
import { appsCreate, appsList } from "./commands/apps.ts";
import { deadLettersList, deadLettersReplay, deadLettersResolve, deadLettersShow } from "./commands/dead-letters.ts";
import { deploy } from "./commands/deploy.ts";
import { kvDelete, kvGet, kvList, kvSet } from "./commands/kv.ts";
import { logs } from "./commands/logs.ts";
import { bootstrap, login } from "./commands/session.ts";
import { triggersAdd, triggersDelete, triggersList } from "./commands/triggers.ts";
import { CliError, EXIT, UsageError } from "./errors.ts";

const COMMANDS: Command[] = [
  bootstrap,
  login,
  appsList,
  appsCreate,
  deploy,
  logs,
  kvGet,
  kvSet,
  kvList,
  kvDelete,
  triggersAdd,
  triggersList,
  triggersDelete,
  deadLettersList,
  deadLettersShow,
  deadLettersReplay,
  deadLettersResolve,
];
/** A group's command when no sub-command is given. */
const DEFAULTS: Record<string, string> = { apps: "apps list" };

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: picloud <command> [options]    (picloud <command> --help for its options)",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary.split(/(?<=\.) /)[0]}`),
    "",
    "Every command takes --json (the API's JSON), --url <server> and --help.",
    "Exit codes: 0 ok, 1 the server refused or the operation failed, 2 usage error, 3 server unreachable.",
  ].join("\n");
}

/** `picloud kv --help`: the group's commands. */
function groupHelp(group: string): Command {
  const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...members.map((c) => c.name.length));
  const text = [`usage: picloud ${group} <command> [options]`, "", ...members.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`)].join("\n");
  return { name: group, summary: text, anonymous: true, run: async () => { out(text); } };
}

/** The command named by argv's first words, and the arguments after its name. */
function find(argv: string[]): { command: Command; rest: string[] } {
  const [first, second] = argv;
  const two = COMMANDS.find((c) => c.name === `${first} ${second}`);
  if (two) return { command: two, rest: argv.slice(2) };
  const one = COMMANDS.find((c) => c.name === first);
  if (one) return { command: one, rest: argv.slice(1) };
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(" ")[1]);
  if (subs.length) {
    const fallback = DEFAULTS[first!];
    if (fallback && (second === undefined || second.startsWith("-"))) return { command: COMMANDS.find((c) => c.name === fallback)!, rest: argv.slice(1) };
    if (second === "--help" || second === "-h") return { command: groupHelp(first!), rest: [] };
    if (second === undefined) throw new UsageError(`${first} needs one of: ${subs.join(", ")}`);
    throw new UsageError(`${first}: unknown command ${JSON.stringify(second)} (one of: ${subs.join(", ")})`);
  }
  throw new UsageError(`unknown command ${JSON.stringify(first)} (picloud --help lists them)`);
}

const out = (s: string) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`);
const argv = process.argv.slice(2);
let name = "picloud";
try {
  if (!argv.length || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") out(overview());
  else {
    const { command, rest } = find(argv);
    name = `picloud ${command.name}`;
    await runCommand(command, rest, out);
  }
  process.exitCode = EXIT.ok;
} catch (err) {
  if (err instanceof CliError) {
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`${name}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT.api;
  }
}
