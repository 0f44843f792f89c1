/**
 * Undo and redo by snapshots: after anything that may have changed the graph (a click, a key, a
 * widget edit) the serialised graph is compared with the last snapshot and, when it differs,
 * becomes a new step. The viewport is not part of a snapshot.
 */

const MAX_STEPS = 100;

function snapshot(graph) {
  const data = graph.serialize();
  delete data.extra?.ds;
  return JSON.stringify(data);
}

/** The undo/redo stacks of one graph; `onChange()` runs after every new step, undo and redo. */
export class History {
  constructor(graph, onChange) {
    this.graph = graph;
    this.onChange = onChange;
    this.undoStack = [];
    this.redoStack = [];
    this.current = null;
    this.restoring = false;
    this.generation = 0;
  }

  /** Starts over from the graph as it is now (after loading a workflow). */
  reset() {
    this.undoStack = [];
    this.redoStack = [];
    this.current = snapshot(this.graph);
  }

  /** Records a step when the graph differs from the last snapshot; returns whether it did. */
  check() {
    if (this.restoring || this.current === null) return false;
    const state = snapshot(this.graph);
    if (state === this.current) return false;
    this.undoStack.push(this.current);
    if (this.undoStack.length > MAX_STEPS) this.undoStack.shift();
    this.redoStack.length = 0; // in place: undo()/redo() hold the arrays while move() checks
    this.current = state;
    this.onChange();
    return true;
  }

  /** Goes one step back; returns false when there is none. */
  undo() {
    return this.move(this.undoStack, this.redoStack);
  }

  /** Goes one step forward again; returns false when there is none. */
  redo() {
    return this.move(this.redoStack, this.undoStack);
  }

  move(from, to) {
    if (!this.restoring) this.check();
    if (!from.length) return false;
    to.push(this.current);
    this.current = from.pop();
    const generation = ++this.generation;
    this.restoring = true;
    this.graph.configure(JSON.parse(this.current));
    // the graph settles a moment later (primitives take their widgets, the execution order is
    // recomputed): that state is the step's snapshot from then on
    setTimeout(() => {
      if (generation !== this.generation) return;
      this.current = snapshot(this.graph);
      this.restoring = false;
      this.onChange();
    });
    return true;
  }
}
