/** Reads a Dockerfile into its stages and instructions, enough for the tests to check its facts. */

/** One instruction: `COPY bin ./bin` is `{keyword: 'COPY', args: 'bin ./bin'}`. */
export interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** One build stage: its base image, its name (`AS name`), and the instructions after its FROM. */
export interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/**
 * Splits a Dockerfile into stages. Comment lines are dropped, and lines ending in `\` are joined
 * to the next (their continuation's leading spaces become one space), as Docker reads them.
 */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const whole = `${pending}${line}`.trim();
    pending = '';
    if (whole !== '') logical.push(whole);
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = line.slice(keyword.length).trim();
    if (keyword.toUpperCase() === 'FROM') {
      const as = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest.join(' '));
      if (as === null) throw new Error(`Dockerfile: cannot read "${line}"`);
      stages.push({ from: as[1] as string, name: as[2], instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    // Instructions before the first FROM (ARG) belong to no stage.
    if (stage !== undefined) stage.instructions.push({ keyword: keyword.toUpperCase(), args });
  }
  return stages;
}
