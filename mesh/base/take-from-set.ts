/**
 * Takes at most `max` members out of a set of notes (what changed), oldest first, removing each as
 * it is taken, so that a large change can be handed out in parts.
 */
export function takeFromSet<T>(notes: Set<T>, max: number): T[] {
  const taken: T[] = [];
  for (const item of notes) {
    if (taken.length >= max) break;
    taken.push(item);
    notes.delete(item);
  }
  return taken;
}
