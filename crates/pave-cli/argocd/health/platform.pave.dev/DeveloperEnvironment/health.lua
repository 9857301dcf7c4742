-- Argo CD health check for pave's DeveloperEnvironment (platform.pave.dev).
--
-- pave writes status.phase (Provisioning, Ready, Updating, Deleting, Failed) and the
-- conditions Ready, Synced, GitOpsSynced, GitOpsHealthy and, after a failure,
-- Terminal or Recoverable. The first case that matches decides:
--   no status, or status or its Ready condition from an older generation
--       -> Progressing "waiting for pave to act on generation N"
--   Terminal=True, phase Failed, or Ready=False with reason Forbidden,
--   PolicyViolation, InvalidSpec, TerminalError or DeletionBlocked
--       -> Degraded, with the condition's message: a person must change something
--   Ready=False with reason ApplicationNotReady and GitOpsHealthy=False with reason
--   Degraded (what its Argo CD Application deployed is Degraded)
--       -> Degraded, with GitOpsHealthy's message
--   phase Deleting
--       -> Progressing, with the Ready message (cloud resources left to delete)
--   Ready=True
--       -> Healthy, with its message
--   Ready=False otherwise: Provisioning, waiting for its Argo CD Application, or a
--   Recoverable error (prefixed "retrying: ", pave retries by itself)
--       -> Progressing, with its message
--   no Ready condition yet, or Ready=Unknown
--       -> Progressing
--
-- Argo CD runs this with gopher-lua's base, table and package libraries only (and
-- os.time, os.date): no string library, so only ==, .. and tostring on strings.

local NEEDS_A_PERSON = {
  Forbidden = true,
  PolicyViolation = true,
  InvalidSpec = true,
  TerminalError = true,
  DeletionBlocked = true,
}

local generation = nil
if type(obj.metadata) == "table" then
  generation = tonumber(obj.metadata.generation)
end

-- The condition of this type in status, or nil.
local function condition(status, wanted)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == wanted then
      return c
    end
  end
  return nil
end

local function stale(c)
  local observed = tonumber(c.observedGeneration)
  return generation ~= nil and observed ~= nil and observed < generation
end

local function is_true(c)
  return c ~= nil and c.status == "True" and not stale(c)
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return tostring(c.message)
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return tostring(c.reason)
  end
  return fallback
end

local function waiting()
  if generation == nil then
    return "waiting for pave to act on this environment"
  end
  return "waiting for pave to act on generation " .. tostring(generation)
end

local function health()
  local status = obj.status
  if type(status) ~= "table" then
    return "Progressing", waiting()
  end
  local observed = tonumber(status.observedGeneration)
  if generation ~= nil and (observed == nil or observed < generation) then
    return "Progressing", waiting()
  end
  local ready = condition(status, "Ready")
  if ready ~= nil and stale(ready) then
    return "Progressing", waiting()
  end
  local not_ready = ready ~= nil and ready.status == "False"

  local terminal = condition(status, "Terminal")
  local refused = not_ready and ready.reason ~= nil and NEEDS_A_PERSON[ready.reason] == true
  if refused or is_true(terminal) or status.phase == "Failed" then
    local message = nil
    if not_ready then
      message = text(ready, nil)
    end
    if message == nil and is_true(terminal) then
      message = text(terminal, nil)
    end
    return "Degraded", message or "the environment failed"
  end

  -- The cloud is ready and what the Application deployed is Degraded (pave's
  -- GitOpsHealthy mirrors Argo CD's health of the Application).
  local app_health = condition(status, "GitOpsHealthy")
  if not_ready and ready.reason == "ApplicationNotReady" and app_health ~= nil
      and not stale(app_health) and app_health.status == "False"
      and app_health.reason == "Degraded" then
    return "Degraded", text(app_health, "its Argo CD Application is Degraded")
  end

  local recoverable = condition(status, "Recoverable")
  local retrying = is_true(recoverable) or (not_ready and ready.reason == "RecoverableError")

  if status.phase == "Deleting" then
    if not not_ready then
      return "Progressing", "deleting its cloud resources"
    end
    if retrying then
      return "Progressing", "retrying: " .. text(ready, "deleting its cloud resources")
    end
    return "Progressing", text(ready, "deleting its cloud resources")
  end

  if ready ~= nil and ready.status == "True" then
    return "Healthy", text(ready, "ready")
  end
  if not_ready then
    if retrying then
      return "Progressing", "retrying: " .. text(ready, "a recoverable error")
    end
    return "Progressing", text(ready, "not ready yet")
  end
  if ready ~= nil then
    return "Progressing", text(ready, "readiness unknown")
  end
  return "Progressing", "waiting for pave to report whether the environment is ready"
end

local hs = {}
hs.status, hs.message = health()
return hs
