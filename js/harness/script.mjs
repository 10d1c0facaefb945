// loadScript(src, global): add a <script> (a UMD build) to the page; resolves with the global it
// defines, rejects naming the URL when the GET fails or the global is missing.
export function loadScript(src, global) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = () => (window[global] ? resolve(window[global]) : reject(new Error(`${src} defined no ${global}`)));
    script.onerror = () => reject(new Error(`GET ${src} failed`));
    document.head.appendChild(script);
  });
}
