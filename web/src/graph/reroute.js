/**
 * The Reroute node of ComfyUI workflows: a small dot with one input and one output that passes a
 * link through. Its output takes the type of what feeds it (else of what it feeds), so links keep
 * their colours and type checks. The converter follows links through it.
 */

import { LiteGraph } from "/lib/litegraph/litegraph.es.js";
import { registerType } from "./node-types.js";
import { WorkflowNode } from "./workflow-node.js";

const ANY = "*";

class RerouteNode extends WorkflowNode {
  static title = "Reroute";
  static collapsable = false;
  static title_mode = LiteGraph.NO_TITLE;

  constructor(title) {
    super(title ?? RerouteNode.title);
    this.isVirtualNode = true;
    this.resizable = false;
    this.addInput("", ANY);
    this.addOutput("", ANY);
    this.size = [75, 26];
  }

  initNew() {
    this.properties.showOutputText = false;
    this.properties.horizontal = false;
  }

  computeSize() {
    return [75, 26];
  }

  /** The type arriving at this reroute through chains of reroutes, or null. */
  upstreamType(seen = new Set()) {
    if (seen.has(this)) return null;
    seen.add(this);
    const link = this.graph?.getLink(this.inputs[0].link);
    const origin = link && this.graph.getNodeById(link.origin_id);
    if (!origin) return null;
    if (origin instanceof RerouteNode) return origin.upstreamType(seen);
    const type = origin.outputs[link.origin_slot]?.type;
    return type && type !== ANY ? type : null;
  }

  /** The type of the first typed input this reroute feeds, through chains of reroutes, or null. */
  downstreamType(seen = new Set()) {
    if (seen.has(this)) return null;
    seen.add(this);
    for (const linkId of this.outputs[0].links ?? []) {
      const link = this.graph.getLink(linkId);
      const target = link && this.graph.getNodeById(link.target_id);
      if (!target) continue;
      const type = target instanceof RerouteNode ? target.downstreamType(seen) : target.inputs[link.target_slot]?.type;
      if (type && type !== ANY) return type;
    }
    return null;
  }

  /** Sets the output's type (and its links') from the chain; then updates the reroutes it feeds. */
  updateType(seen = new Set()) {
    if (!this.graph || seen.has(this)) return;
    seen.add(this);
    const type = this.upstreamType() ?? this.downstreamType() ?? ANY;
    const output = this.outputs[0];
    output.type = type;
    output.name = this.properties.showOutputText && type !== ANY ? type : "";
    const inputLink = this.graph.getLink(this.inputs[0].link);
    if (inputLink && type !== ANY) inputLink.type = type;
    for (const linkId of output.links ?? []) {
      const link = this.graph.getLink(linkId);
      if (!link) continue;
      link.type = type;
      const target = this.graph.getNodeById(link.target_id);
      if (target instanceof RerouteNode) target.updateType(seen);
    }
    this.setDirtyCanvas(true, true);
  }

  onConnectionsChange() {
    // links are complete only after the current change; reroutes upstream may change type too
    queueMicrotask(() => {
      const first = this.graph ? this.chainStart() : null;
      first?.updateType();
    });
  }

  /** The first reroute of the chain this one belongs to. */
  chainStart(seen = new Set()) {
    if (seen.has(this)) return this;
    seen.add(this);
    const link = this.graph?.getLink(this.inputs[0].link);
    const origin = link && this.graph.getNodeById(link.origin_id);
    return origin instanceof RerouteNode ? origin.chainStart(seen) : this;
  }

  /** Refuses a feed whose type does not fit what the reroute already feeds. */
  onConnectInput(slot, type) {
    const wanted = this.downstreamType();
    return !wanted || LiteGraph.isValidConnection(type, wanted);
  }
}

/** Registers the Reroute node type. */
export function registerReroute() {
  registerType("Reroute", RerouteNode, "utils");
}
