import { Action, ParamsFrom } from "actionhero";

// Benchmark peer of hero-fast's `echo` action: returns the `x` (and optional `message`)
// parameter it was given. Undeclared params are dropped by actionhero before run().
export class Echo extends Action {
  name = "echo";
  description = "echo the x and message params back (benchmark)";
  inputs = {
    x: { required: false },
    message: { required: false },
  };
  outputExample = { x: 1 };

  async run({ params }: { params: ParamsFrom<Echo> }) {
    return { x: params.x, message: params.message };
  }
}
