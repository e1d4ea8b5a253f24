export { bundlePage, type BundleOptions } from './bundle.ts';
