// Placeholder page: shows where the designer sends.
const answer = await fetch("/api/session");
const session = await answer.json();
document.getElementById("session").textContent =
  `Sends to ${session.target}; credentials: ${session.credentials}`;
