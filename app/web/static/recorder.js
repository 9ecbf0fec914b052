// Voice answers recorded in the browser: MediaRecorder fills the voice form's file input, so the
// answer is sent by the same form (with its CSRF token and case version) as an uploaded file.
// Served as a file because the CSP allows no inline script.
"use strict";

(function () {
  const form = document.getElementById("voice-answer");
  if (!form) {
    return;
  }
  const input = form.querySelector("input[type=file]");
  const maxBytes = Number(form.dataset.maxBytes || "0");
  const panel = form.querySelector(".recorder");
  const start = document.getElementById("record-start");
  const stop = document.getElementById("record-stop");
  const state = document.getElementById("record-state");
  const preview = document.getElementById("record-preview");
  let recorder = null;
  let recorded = null;

  function say(text) {
    state.textContent = text;
  }

  // Refuse an oversized file here too, so nobody waits for an upload the server will refuse.
  form.addEventListener("submit", function (event) {
    const file = input.files && input.files[0];
    if (file && maxBytes && file.size > maxBytes) {
      event.preventDefault();
      say("El archivo es demasiado grande (máximo " + Math.floor(maxBytes / 1000000) + " MB).");
      return;
    }
    if (!file && recorded) {
      event.preventDefault(); // the browser would not let us fill the input: send the recording ourselves
      send(recorded);
    }
  });

  function send(file) {
    const data = new FormData(form);
    data.set(input.name, file, file.name);
    say("Enviando…");
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) {
        return response.text().then(function (html) {
          if (response.redirected) {
            window.location.assign(response.url);
          } else {
            document.open();
            document.write(html);
            document.close();
          }
        });
      })
      .catch(function () {
        say("No se pudo enviar la grabación. Revise la conexión e intente de nuevo.");
      });
  }

  function keep(blob) {
    const type = blob.type || "audio/webm";
    const file = new File([blob], "respuesta." + (type.indexOf("ogg") >= 0 ? "ogg" : "webm"), { type: type });
    recorded = file;
    try {
      const transfer = new DataTransfer();
      transfer.items.add(file);
      input.files = transfer.files;
      input.required = true;
    } catch (error) {
      input.required = false; // the submit handler sends `recorded` instead
    }
    if (preview.src) {
      URL.revokeObjectURL(preview.src);
    }
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    say("Grabación lista (" + Math.round(file.size / 1000) + " kB). Escúchela y envíela.");
  }

  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ audio: true }).then(
      function (stream) {
        const chunks = [];
        recorder = new MediaRecorder(stream);
        recorder.addEventListener("dataavailable", function (event) {
          if (event.data.size > 0) {
            chunks.push(event.data);
          }
        });
        recorder.addEventListener("stop", function () {
          stream.getTracks().forEach(function (track) {
            track.stop();
          });
          keep(new Blob(chunks, { type: recorder.mimeType }));
        });
        recorder.start();
        start.disabled = true;
        stop.disabled = false;
        say("Grabando…");
      },
      function () {
        say("El navegador no dio acceso al micrófono. Puede subir un archivo de audio.");
      }
    );
  });

  stop.addEventListener("click", function () {
    if (recorder && recorder.state === "recording") {
      recorder.stop();
    }
    start.disabled = false;
    stop.disabled = true;
  });

  // Only offer recording where the browser can do it (https or localhost, MediaRecorder present).
  if (window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    panel.hidden = false;
  }
})();
