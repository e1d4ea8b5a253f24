// reflect.ts imports wgsl_reflect's ES module build by path (the package has no exports map); its types are the
// package's own. Declared here, beside the runtime's dependency on it, so 'wgsl_reflect' resolves from this package.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
