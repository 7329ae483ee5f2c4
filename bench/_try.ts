import { benchEvaluations, benchMarginCheck } from './margin.ts';
const t = performance.now();

await benchMarginCheck({ books: [10_000, 100_000, 1_000_000], crossed: [0, 10, 1000], budgetMs: 1000, log: console.log });
console.log('total', performance.now() - t);
